"""Domain errors: each names the rule it enforces, so every refusal can say why."""

from __future__ import annotations


class CapaError(Exception):
    """Base of every error a user may see; the CLI maps each subclass to one exit code."""

    rule: str | None = None

    def __init__(self, message: str, rule: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if rule is not None:
            self.rule = rule

    def __str__(self) -> str:
        if self.rule:
            return f"refused ({self.rule}): {self.message}"
        return self.message


class RuleViolation(CapaError):
    """A workflow rule (R1-R10) refused the command."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message, rule)


class InvalidInput(CapaError):
    """A value is malformed, out of range or unknown."""


class NotFound(CapaError):
    """A record, user or store does not exist."""


class NotPermitted(CapaError):
    """The acting user is unknown, unauthenticated or lacks the role."""


class Conflict(CapaError):
    """The record changed concurrently; nothing was written."""


class IntegrityFailure(CapaError):
    """The audit trail failed verification."""


#: SPEC §3 exit codes, in the one place that maps errors to them (the command line exits with
#: them, the server answers with their HTTP statuses, its client maps them back).
EXIT_CODES: dict[type[CapaError], int] = {
    RuleViolation: 1,
    InvalidInput: 2,
    NotFound: 3,
    NotPermitted: 4,
    Conflict: 5,
    IntegrityFailure: 6,
}


def exit_code(error: CapaError) -> int:
    """The exit code of an error: its class's, or its nearest base's; 1 for any other."""
    return EXIT_CODES.get(type(error)) or next(
        (code for kind, code in EXIT_CODES.items() if isinstance(error, kind)), 1)
