"""Harvest one site's activations into an on-disk store (resumable).

    python -m launch.harvest --config=experiments/harvest_smollm2.py:smoke --workdir=DIR
"""

from launch import common
from sae.activations import harvest
from stack.config import to_dataclass


def main(argv):
  common.check_argv(argv)
  cfg = to_dataclass(common.load_config_flag(), harvest.HarvestConfig)
  harvest.harvest(cfg, common.workdir_flag())


if __name__ == "__main__":
  common.run(main)
