"""DafnyBench runner.

  python -m verify.run --model=replay:claude-3-opus --out=runs/dafny/claude-3-opus --workers=2
  python -m verify.run --model=anthropic:claude-3-opus-20240229 --out=runs/dafny/opus  # $ANTHROPIC_API_KEY
  python -m verify.run --model=openai:gpt-4o --api_url=http://host:8000/v1 --out=runs/dafny/gpt4o
  python -m verify.run --model=heuristic --out=runs/dafny/heuristic --attempts=10

--model: none (hint-free input), oracle (ground truth), heuristic (model-free invariant search),
replay:NAME (published outputs), openai:MODEL or anthropic:MODEL (any compatible endpoint).
Rerunning the same command resumes: finished tasks are skipped, caches make the rest cheap.
The flags are RunConfig's fields, with the same names, defaults and help.
"""
import dataclasses
import sys
import typing

from absl import app, flags

from stack.errors import UserError
from verify.runner import RunConfig, run

_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float}


def _define_flags() -> dict[str, flags.FlagHolder]:
  types = typing.get_type_hints(RunConfig)
  return {f.name: _DEFINE.get(types[f.name], flags.DEFINE_string)(f.name, f.default, f.metadata["help"])
          for f in dataclasses.fields(RunConfig)}


_FLAGS = _define_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not _FLAGS["model"].value or not _FLAGS["out"].value:
    raise app.UsageError("--model and --out are required")
  try:
    run(RunConfig(**{name: holder.value for name, holder in _FLAGS.items()}))
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
