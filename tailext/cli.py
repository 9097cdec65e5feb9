"""``tailext`` command line: ``tailext validate <check> --out DIR [...]``.

Each validation check lives in its own module of the top-level ``validation`` package and
exposes ``configure_parser(parser)`` (add its options) and ``run(args) -> int``. Adding a
check is one entry in :data:`VALIDATIONS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ._version import __version__

#: check name → (module, one-line help)
VALIDATIONS: dict[str, tuple[str, str]] = {
    "appendix-e": ("validation.appendix_e",
                   "Appendix E diagnostic: bias/variance/MSE of TEA and Prefix-TEA vs Table 15"),
    "rates": ("validation.rates",
              "Theorems 1-2: fitted log-log slopes of bias and variance against m"),
    "lemmas": ("validation.lemmas",
               "Lemma 2 by finite differences and Lemma 1's exponential surrogate error"),
    "posttrain": ("validation.posttrain",
                  "toy torch post-training run: GRPO vs TEA best-of-n frontier"),
    "simulator": ("validation.simulator",
                  "every rule on an exact contextual bandit: best-of-n frontier, CIs vs GRPO, "
                  "oracle alignment"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tailext", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"tailext {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="run a theory or simulation check")
    checks = validate.add_subparsers(dest="check", required=True)
    for name, (module_name, help_text) in VALIDATIONS.items():
        sub = checks.add_parser(name, help=help_text)
        sub.set_defaults(_module=module_name)
        importlib.import_module(module_name).configure_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
