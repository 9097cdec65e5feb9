"""The tailext command line: tailext validate CHECK --out DIR [options].

Each check is a module of tailext.validate with DESCRIPTION, configure_parser(parser),
requirements(args) and run(args) -> exit status. Adding a check is one entry in
VALIDATIONS. Every argument is validated before any work: a bad value, a missing optional
package or an incompatible --out directory is one line "tailext validate CHECK: error: ..."
and exit status 2; Ctrl-C (or SIGTERM) is one line and exit status 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from ._version import __version__

#: check name → module
VALIDATIONS: dict[str, str] = {
    "appendix-e": "tailext.validate.theory.appendix_e",
    "rates": "tailext.validate.theory.rates",
    "lemmas": "tailext.validate.theory.lemmas",
    "binary-rewards": "tailext.validate.theory.binary_rewards",
    "simulator": "tailext.validate.simulator.command",
    "posttrain": "tailext.validate.posttrain.command",
    "posttrain-risky": "tailext.validate.posttrain.study",
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): ``PROG: error: MESSAGE``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tailext",
                     description="tailext: Tail-Extrapolated Advantage (TEA) and Prefix-TEA. "
                                 "The command line runs the validation checks.")
    parser.add_argument("--version", action="version", version=f"tailext {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate = commands.add_parser(
        "validate", help="run a theory, simulation or training check",
        description="Run one check of the paper's claims. Every check writes a JSON record "
                    "(configuration, version, seed, environment, timing), a markdown report "
                    "and figures into --out, and resumes when rerun into the same --out.")
    checks = validate.add_subparsers(dest="check", required=True, metavar="CHECK")
    for name, module_name in VALIDATIONS.items():
        module = importlib.import_module(module_name)
        sub = checks.add_parser(name, help=module.DESCRIPTION, description=module.DESCRIPTION)
        sub.set_defaults(_module=module, _parser=sub)
        module.configure_parser(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"tailext: {category.__name__}: {message}\n"


def main(argv=None) -> int:
    import signal

    shown = warnings.formatwarning
    warnings.formatwarning = _one_line_warning  # a warning is a line, not a source excerpt
    terminate = signal.getsignal(signal.SIGTERM)
    if terminate == signal.SIG_DFL:  # a batch system's SIGTERM stops a run as Ctrl-C does
        from .validate.runner import stop_on_sigterm

        signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before a check's own handling started (imports, setup)
        print("interrupted before any work: nothing written.", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = shown
        if terminate == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, terminate)


def _main(argv) -> int:
    from .validate.arguments import UsageError, missing_requirements

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    sub = args._parser
    if extra:
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    missing = missing_requirements(args._module.requirements(args))
    if missing:
        sub.error(missing)
    try:
        return int(args._module.run(args) or 0)
    except UsageError as error:
        sub.error(str(error))


if __name__ == "__main__":
    sys.exit(main())
