"""Exceptions and warnings that shapecheck raises on the user's behalf."""


class UsageError(Exception):
    """Bad input from the user (a missing script, an unknown name): reported as one line, exit status 2."""


class ShapeWarning(UserWarning):
    """A finding about a traced function: `code` is the rule (SC101...), `finding` the full record."""

    def __init__(self, message: str, code: str = "", finding=None):
        super().__init__(message)
        self.code = code
        self.finding = finding


class ShapeError(ValueError):
    """Raised by `@shapecheck.trace(strict=True)` after a call that made warning- or error-level findings."""

    def __init__(self, message: str, findings=()):
        super().__init__(message)
        self.findings = list(findings)
