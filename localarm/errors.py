"""ARM error responses: ``{"error": {"code": ..., "message": ...}}`` with an HTTP status."""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An error the emulator answers with, shaped like Azure Resource Manager's."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
        raw: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details or []
        self.raw = raw  # a provider's own error shape (AKS), sent as it is

    def body(self) -> dict[str, Any]:
        if self.raw is not None:
            return self.raw
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def not_found(resource_type: str, name: str, resource_group: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def parent_not_found(parent_type: str, parent_name: str, resource_group: str) -> ArmError:
    return ArmError(
        404,
        "ParentResourceNotFound",
        f"Can not perform requested operation on nested resource. Parent resource "
        f"'{parent_name}' of type '{parent_type}' not found in resource group '{resource_group}'.",
    )


def bad_request(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)
