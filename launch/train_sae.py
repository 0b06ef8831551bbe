"""Trains an SAE (Switch or a baseline) from an experiment config; resumes from --workdir.

    python -m launch.train_sae --config=experiments/sae_synthetic.py:smoke --workdir=/tmp/sae
"""

from launch import common


def main(argv):
  common.check_argv(argv)
  from sae import config, train  # pylint: disable=import-outside-toplevel
  from stack.config import to_dataclass  # pylint: disable=import-outside-toplevel
  cfg = to_dataclass(common.load_config_flag(), config.TrainConfig)
  train.run(cfg, common.workdir_flag())


if __name__ == "__main__":
  common.run(main)
