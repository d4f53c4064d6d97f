"""One error tree. The CLI turns each into a one-line message and an exit code.

Exit codes (documented in the README and in `edgezoo --help`):
  0  success
  1  internal error (a bug: please report it with the traceback from --debug)
  2  usage error: unknown model, target, option or malformed input
  3  the pipeline failed (conversion, quantization or benchmark)
  4  a budget or quality gate was not met (model too large, too slow, accuracy lost)
  5  verification failed (checksum mismatch, schema error in a bundle)
  6  weights, data or a device could not be reached (offline, server gone, device down)
"""

from __future__ import annotations

import difflib


class EdgezooError(Exception):
    """Base of all user-facing errors: the message is one line saying what to do."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line, message then what to do
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(EdgezooError):
    exit_code = 2


class NotFoundError(UsageError):
    """An unknown model, target or file; suggests close names."""

    def __init__(self, kind: str, name: str, known: list[str] | None = None, *, hint: str | None = None):
        suggestion = hint
        if known is not None and suggestion is None:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            if close:
                suggestion = "did you mean " + " or ".join(repr(c) for c in close) + "?"
            else:
                suggestion = f"known: {', '.join(sorted(known))}"
        super().__init__(f"unknown {kind} {name!r}", hint=suggestion)


class SchemaError(UsageError):
    """A card, profile, plan or manifest that does not validate: names the file and key."""


class ModelFileError(UsageError):
    """A corrupt or unsupported model file, or inputs that do not match it."""


class OutputExistsError(UsageError):
    pass


class MissingDependencyError(UsageError):
    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the Python package {package!r}, which is not installed",
            hint=f"pip install 'edgezoo[{extra}]'",
        )


class PipelineError(EdgezooError):
    exit_code = 3


class BudgetError(EdgezooError):
    exit_code = 4


class VerificationError(EdgezooError):
    exit_code = 5


class FetchError(EdgezooError):
    exit_code = 6


def require(module: str, *, package: str | None = None, extra: str, purpose: str):
    """Import a heavy optional module lazily, turning absence into a clear error."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # Only a missing top-level package is the user's to fix; a broken install is a bug.
        if exc.name and exc.name.split(".")[0] == module.split(".")[0]:
            raise MissingDependencyError(package or module.split(".")[0], extra, purpose) from exc
        raise


def first_line(exc: BaseException | str) -> str:
    """The first non-empty line of an exception's text (or its type when it has none)."""
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if lines:
        return lines[0].strip()
    return type(exc).__name__ if isinstance(exc, BaseException) else "no message"


def last_line(exc: BaseException | str) -> str:
    """The last non-empty line (where tools put the actual error after their context)."""
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if lines:
        return lines[-1].strip()
    return type(exc).__name__ if isinstance(exc, BaseException) else "no message"
