"""The DDI documents, as hawkBit's DDI API reference shows them (docs/ddi.md): what the
scheduler answers (field names as DDI spells them, ``_links`` included) and what a device sends
(bounded: at most ``max_report_bytes`` in all, each list and map bounded here too)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints

#: What a DDI client is told to do with the download and the update of a deployment.
HandlingType = Literal["skip", "attempt", "forced"]
Execution = Literal["closed", "proceeding", "canceled", "scheduled", "rejected", "resumed",
                    "downloaded", "download"]
Finished = Literal["success", "failure", "none"]
Detail = Annotated[str, StringConstraints(max_length=1024)]
AttributeName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
AttributeValue = Annotated[str, StringConstraints(max_length=512)]
#: Most attributes a device keeps in the registry.
MAX_ATTRIBUTES = 64


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class Href(_Out):
    href: str


class Polling(_Out):
    #: ``HH:MM:SS``
    sleep: str


class PollConfig(_Out):
    polling: Polling


class BaseLinks(_Out):
    deploymentBase: Href | None = None  # noqa: N815 (DDI's name)
    cancelAction: Href | None = None  # noqa: N815
    configData: Href | None = None  # noqa: N815
    installedBase: Href | None = None  # noqa: N815
    confirmationBase: Href | None = None  # noqa: N815


class BasePoll(_Out):
    """``GET /{tenant}/controller/v1/{controllerId}``"""

    config: PollConfig
    links: BaseLinks = Field(validation_alias=AliasChoices("links", "_links"),
                        serialization_alias="_links")


class Hashes(_Out):
    sha1: str
    md5: str
    sha256: str


class ArtifactLinks(_Out):
    download: Href
    download_http: Href = Field(validation_alias=AliasChoices("download_http", "download-http"),
                                serialization_alias="download-http")


class Artifact(_Out):
    filename: str
    hashes: Hashes
    size: int
    links: ArtifactLinks = Field(validation_alias=AliasChoices("links", "_links"),
                        serialization_alias="_links")


class Chunk(_Out):
    part: str
    version: str
    name: str
    artifacts: list[Artifact]


class Deployment(_Out):
    download: HandlingType
    update: HandlingType
    #: Present when the rollout has a maintenance window: whether it is open now.
    maintenanceWindow: Literal["available", "unavailable"] | None = None  # noqa: N815
    chunks: list[Chunk]


class ActionHistory(_Out):
    status: str
    messages: list[str]


class DeploymentBase(_Out):
    """``GET .../deploymentBase/{actionId}`` and ``GET .../installedBase/{actionId}``"""

    id: str
    deployment: Deployment
    actionHistory: ActionHistory | None = None  # noqa: N815


class ConfirmationBaseAction(_Out):
    """``GET .../confirmationBase/{actionId}``: the deployment that waits for the device's
    consent."""

    id: str
    confirmation: Deployment
    actionHistory: ActionHistory | None = None  # noqa: N815


class AutoConfirm(_Out):
    state: Literal["active", "inactive"]


class ConfirmationLinks(_Out):
    confirmationBase: Href | None = None  # noqa: N815


class ConfirmationBase(_Out):
    """``GET .../confirmationBase``"""

    autoConfirm: AutoConfirm  # noqa: N815
    links: ConfirmationLinks = Field(validation_alias=AliasChoices("links", "_links"),
                        serialization_alias="_links")


class StopId(_Out):
    stopId: str  # noqa: N815


class CancelAction(_Out):
    """``GET .../cancelAction/{actionId}``"""

    id: str
    cancelAction: StopId  # noqa: N815


# --- what devices send ---------------------------------------------------------------------

class _In(BaseModel):
    # DDI clients add fields of their own (an ``id``, a ``time``): they are ignored.
    model_config = ConfigDict(extra="ignore")


class Progress(_In):
    cnt: int | None = Field(default=None, ge=0, le=2**31)
    of: int | None = Field(default=None, ge=0, le=2**31)


class Result(_In):
    finished: Finished
    progress: Progress | None = None


class Status(_In):
    execution: Execution
    result: Result
    code: int | None = Field(default=None, ge=-(2**31), le=2**31)
    details: list[Detail] = Field(default_factory=list, max_length=1024)


class Feedback(_In):
    """``POST .../deploymentBase/{actionId}/feedback`` and ``.../cancelAction/{id}/feedback``"""

    time: str | None = Field(default=None, max_length=64)
    status: Status


class ConfigData(_In):
    """``PUT .../configData``"""

    mode: Literal["merge", "replace", "remove"] = "merge"
    data: dict[AttributeName, AttributeValue] = Field(max_length=MAX_ATTRIBUTES)


class ConfirmationFeedback(_In):
    """``POST .../confirmationBase/{actionId}/feedback``"""

    confirmation: Literal["confirmed", "denied"]
    code: int | None = Field(default=None, ge=-(2**31), le=2**31)
    details: list[Detail] = Field(default_factory=list, max_length=32)


# --- operators -----------------------------------------------------------------------------

class TargetTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "DEFAULT"
    kind: Literal["linux", "mcu"] = "linux"


class TargetTokenIssued(BaseModel):
    device_id: str
    tenant: str
    kind: str
    #: Shown once: the scheduler keeps only its SHA-256.
    token: str


class GatewayTokenIssued(BaseModel):
    tenant: str
    #: Shown once: the scheduler keeps only its SHA-256.
    token: str
