"""What ``az aks`` does to a cluster, for the demo and the tests: reads and writes of AKS managed clusters
and agent pools through the Azure SDK's ARM pipeline (the remediator itself only reads clusters)."""

from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import HeadersPolicy, RequestIdPolicy, RetryPolicy
from azure.core.polling import LROPoller
from azure.core.rest import HttpRequest
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy
from azure.mgmt.core.polling.arm_polling import ARMPolling

AKS_API = "2026-08-01"
ARM_SCOPE = "https://management.azure.com/.default"


class AksClient:
    """Managed clusters and agent pools by path, each write waited for as a ``begin_*`` call would."""

    def __init__(
        self, *, endpoint: str, credential: TokenCredential, ca_bundle: str, polling_interval: float = 0
    ) -> None:
        policies = [
            RequestIdPolicy(),
            HeadersPolicy(),
            RetryPolicy(retry_backoff_factor=0.01),
            ARMChallengeAuthenticationPolicy(credential, ARM_SCOPE),
        ]
        self.client: ARMPipelineClient[HttpRequest, Any] = ARMPipelineClient(
            base_url=endpoint, policies=policies, connection_verify=ca_bundle
        )
        self.polling_interval = polling_interval

    def _send(self, method: str, path: str, body: Any = None) -> Any:
        request = HttpRequest(method, self.client.format_url(path), params={"api-version": AKS_API}, json=body)
        return self.client.send_request(request, _return_pipeline_response=True)

    def get(self, path: str) -> dict[str, Any]:
        response = self._send("GET", path).http_response
        if response.status_code != 200:
            raise HttpResponseError(response=response)
        loaded: dict[str, Any] = response.json()
        return loaded

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or update and wait for the long-running operation to end."""
        initial = self._send("PUT", path, body)
        if initial.http_response.status_code not in (200, 201):
            raise HttpResponseError(response=initial.http_response)
        polling = ARMPolling(self.polling_interval)
        poller = LROPoller(self.client, initial, lambda pipeline: pipeline.http_response.json(), polling)
        result: dict[str, Any] = poller.result(timeout=30)
        return result

    def delete(self, path: str) -> None:
        initial = self._send("DELETE", path)
        if initial.http_response.status_code == 204:
            return
        if initial.http_response.status_code != 202:
            raise HttpResponseError(response=initial.http_response)
        LROPoller(self.client, initial, lambda _pipeline: None, ARMPolling(self.polling_interval)).result(timeout=30)
