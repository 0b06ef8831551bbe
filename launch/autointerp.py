"""Auto-interpretability of one trained SAE of a Switch-paper sweep, against an OpenAI-style chat
endpoint: explanations from top contexts, then detection scoring (sae.analysis.autointerp).

    python -m launch.autointerp --config=experiments/switch_paper.py --workdir=runs/switch_paper \
        --run=switch_M1024_N8_k32_a3 --url=http://localhost:8000/v1 --model=Qwen2.5-7B-Instruct

Results: <workdir>/runs/<run>/autointerp.jsonl (one row per latent, resumable) and its
.summary.json. The API key, if the endpoint needs one, comes from $OPENAI_API_KEY.
"""

import os

from absl import flags

from launch import common

flags.DEFINE_string("run", None, "Run name inside the sweep (a folder of <workdir>/runs).")
flags.DEFINE_string("url", None, "Chat endpoint, e.g. http://localhost:8000/v1")
flags.DEFINE_string("model", None, "Model name the endpoint serves.")
flags.DEFINE_integer("num_latents", 1000, "Random latents to explain and score (paper: 1000).")
flags.DEFINE_integer("num_tokens", 65_536, "Tokens of the training store searched for contexts.")
flags.DEFINE_integer("num_workers", 4, "LLM requests in flight at once.")


def main(argv):
  common.check_argv(argv)
  from sae import sweep  # pylint: disable=import-outside-toplevel
  from sae.interpret import interpret  # pylint: disable=import-outside-toplevel
  from stack.chat import ChatClient  # pylint: disable=import-outside-toplevel
  from stack.config import to_dataclass  # pylint: disable=import-outside-toplevel
  from stack.errors import UserError  # pylint: disable=import-outside-toplevel
  f = flags.FLAGS
  if not (f.run and f.url and f.model):
    raise UserError("--run, --url and --model are required")
  cfg = to_dataclass(common.load_config_flag(), sweep.SweepConfig)
  workdir = common.workdir_flag()
  out = os.path.join(workdir, "runs", f.run, "autointerp.jsonl")
  client = ChatClient(f.url, f.model, cache_dir=os.path.join(workdir, "chat_cache"))
  summary = interpret(cfg, workdir, f.run, client, out, num_latents=f.num_latents,
                      num_tokens=f.num_tokens, num_workers=f.num_workers)
  print(f"detection accuracy {summary['mean_detection_accuracy']} over {summary['num_scored']} "
        f"latents; rows in {out}", flush=True)


if __name__ == "__main__":
  common.run(main)
