"""The one error class of the reader: a code from changetrail's closed set (src/errors.ts) and details."""


class ChangetrailError(Exception):
    """A failure that comes from data: a damaged journal, a conflicting replica. `code` is stable."""

    def __init__(self, code, message, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def to_json(self):
        return {"name": "ChangetrailError", "code": self.code, "message": self.message, "details": self.details}
