"""The one error type of the control plane; adapters turn it into a response or a SIP reply."""

from __future__ import annotations


class ControlError(Exception):
    """A refused request: ``status`` is the HTTP status, ``code``/``message`` the JSON error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


def bad_request(code: str, message: str) -> ControlError:
    return ControlError(400, code, message)


def not_found(message: str = "conference not found") -> ControlError:
    return ControlError(404, "not_found", message)
