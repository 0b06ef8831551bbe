"""Runs the Switch SAE paper's sweep (resumable), then writes its figures and table.

    python -m launch.switch_paper --config=experiments/switch_paper.py:smoke --workdir=/tmp/sp
    nice -n 5 python -m launch.switch_paper --config=experiments/switch_paper.py \
        --workdir=runs/switch_paper --results_dir=results/switch_paper
"""

import os
import shutil

from absl import flags, logging

from launch import common

flags.DEFINE_string("results_dir", None, "Where sweep.json, the PNGs and their JSON go "
                    "(default: <workdir>/figures).")
flags.DEFINE_bool("figures_only", False, "Skip training; draw the figures from the finished runs.")


def main(argv):
  common.check_argv(argv)
  logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint at INFO
  from sae import paper_figures, sweep  # pylint: disable=import-outside-toplevel
  from stack.config import to_dataclass  # pylint: disable=import-outside-toplevel
  cfg = to_dataclass(common.load_config_flag(), sweep.SweepConfig)
  workdir = common.workdir_flag()
  results = os.path.abspath(flags.FLAGS.results_dir or os.path.join(workdir, "figures"))
  if not flags.FLAGS.figures_only:
    sweep.run_sweep(cfg, workdir)
  elif not os.path.isdir(os.path.join(workdir, "runs")):
    from stack.errors import UserError  # pylint: disable=import-outside-toplevel
    raise UserError(f"{workdir} holds no runs; run without --figures_only first")
  else:
    sweep.write_sweep(cfg, workdir)
  figures = paper_figures.write_figures(workdir, results)
  shutil.copyfile(os.path.join(workdir, "sweep.json"), os.path.join(results, "sweep.json"))
  print(f"{len(figures)} figures in {results}", flush=True)


if __name__ == "__main__":
  common.run(main)
