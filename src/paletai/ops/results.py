"""The declared shape of every `--json` result of the operator kit: one model per command.

Each result names the command that wrote it (`command`) and the version of its shape
(`schema_version`); `migrate report` reads a file by its `command` and nothing else. The field
names are the ones the commands wrote before they were declared here (docs and scripts use them).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

SCHEMA_VERSION = 1


def _absent_when_none() -> Any:
    """A field the command writes only when it has a value (absent, not null, otherwise)."""
    return Field(default=None, exclude_if=lambda value: value is None)


class _Shape(BaseModel):
    # Undeclared keys are refused, so a result can only carry what its model says.
    model_config = ConfigDict(extra="forbid")


class OpsResult(_Shape):
    """What every `--json` result has: the command that wrote it and its shape's version."""

    command: str
    schema_version: int = SCHEMA_VERSION

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {value} is not the {SCHEMA_VERSION} this paletai reads "
                "(written by another version of paletai?)"
            )
        return value


# ---------------------------------------------------------------------------------------------
# db backup | restore | verify | sync | cutover


class DumpedCollection(_Shape):
    name: str
    documents: int
    bytes: int
    seconds: float
    path: str | None = _absent_when_none()  # the .bson file (would be, with --dry-run)
    kind: str = "collection"  # or "view" (definition only) or "timeseries"


class BlobBackupFigures(_Shape):
    """Where `db backup --to-blob` put a backup (a folder of blobs, manifest.json last)."""

    url: str  # the container's URL, never a key or SAS
    container: str
    name: str
    started_at: str
    finished_at: str
    blobs: int = 0
    blob_bytes: int = 0


class RetentionFigures(_Shape):
    """What `--keep-daily/--keep-weekly` kept and deleted after a backup."""

    keep_daily: int
    keep_weekly: int
    kept: list[str] = []
    deleted: list[str] = []
    deleted_incomplete: list[str] = []


class RestoreTestFigures(_Shape):
    """`db backup --test-restore`: the backup restored into a scratch database and verified."""

    host: str  # never credentials
    database: str
    restored_documents: int = 0
    matched_manifest: bool = False
    verify_identical: bool = False
    documents_differing: int = 0
    index_differences: int = 0
    dropped: bool = False
    ok: bool = False
    problem: str | None = None
    seconds: float = 0.0


class ConsistentCapture(_Shape):
    """`db backup --consistent`: the changes recorded up to the end instant, and where."""

    file: str  # oplog.bson (stock mongorestore replays it) or paletai-changes.bson (ours)
    events: int
    rounds: int
    entries: int
    started_at: str
    ended_at: str
    end_cluster_time: str | None = None


class DbBackupResult(OpsResult):
    command: Literal["db backup"] = "db backup"
    database: str
    directory: str
    collections: list[DumpedCollection] = []
    seconds: float = 0.0
    documents: int = 0
    bytes: int = 0
    dry_run: bool = False  # nothing was written; documents are the counts that would be
    query: str | None = _absent_when_none()  # --query, as given
    # --collection / --ns-exclude: a backup of part of the database (not a full backup)
    collection: str | None = _absent_when_none()
    ns_exclude: list[str] | None = _absent_when_none()
    users: int | None = _absent_when_none()  # with --include-users
    roles: int | None = _absent_when_none()
    blob: BlobBackupFigures | None = _absent_when_none()
    retention: RetentionFigures | None = _absent_when_none()
    test_restore: RestoreTestFigures | None = _absent_when_none()
    archive: str | None = _absent_when_none()
    consistent: ConsistentCapture | None = _absent_when_none()


class RestoredCollection(_Shape):
    namespace: str
    source_namespace: str
    documents: int = 0
    inserted: int = 0
    duplicates: int = 0
    errors: int = 0
    indexes: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error_samples: list[str] = []
    action: str | None = _absent_when_none()  # --dry-run: create, drop and restore, merge, ...
    kind: str = "collection"
    problem: str | None = None  # the target could not hold this kind or these options


class OplogReplayed(_Shape):
    """`db restore --oplog-replay`: the entries of the dump's oplog, applied in order."""

    source: str
    entries: int = 0
    applied: int = 0
    skipped: int = 0
    seconds: float = 0.0


class DbRestoreResult(OpsResult):
    command: Literal["db restore"] = "db restore"
    collections: list[RestoredCollection] = []
    seconds: float = 0.0
    ok: bool
    dry_run: bool = False  # nothing was written
    users: int | None = _absent_when_none()  # with --include-users
    roles: int | None = _absent_when_none()
    from_blob: str | None = _absent_when_none()  # the backup's name, restored from Blob Storage
    oplog: OplogReplayed | None = _absent_when_none()


class IdSample(_Shape):
    """A count and the first few `_id`s (extended JSON) of one kind of difference."""

    count: int = 0
    sample: list[str] = []


class VerifiedCollection(_Shape):
    name: str
    source_count: int = 0
    target_count: int = 0
    in_source: bool = True
    in_target: bool = True
    missing_in_target: IdSample = IdSample()
    extra_in_target: IdSample = IdSample()
    different: IdSample = IdSample()
    indexes_missing_in_target: list[str] = []
    indexes_extra_in_target: list[str] = []
    merge: str = "sorted"
    identical: bool
    kind: str = "collection"
    option_differences: list[str] = []  # the collection's own options (capped, validator, ...)
    index_option_differences: list[str] = []  # same-key indexes whose options differ


class DbRepairLikesResult(OpsResult):
    command: Literal["db repair likes"] = "db repair likes"
    scope: Literal["pending", "all"]
    checked: int = 0
    fixed: int = 0
    unsettled: int = 0


class DbVerifyResult(OpsResult):
    command: Literal["db verify"] = "db verify"
    source_db: str
    target_db: str
    collections: list[VerifiedCollection] = []
    seconds: float = 0.0
    identical: bool


class SyncedCollection(_Shape):
    """One collection's sync status when the command ended (the engine's CollectionStatus)."""

    name: str
    phase: str = "stopped"
    copied: int = 0
    copy_total: int = 0
    events: int = 0
    keys_applied: int = 0
    lag: float = 0.0
    caught_up: bool = False
    reconciles: int = 0
    reconcile_fixes: int = 0
    write_errors: int = 0
    retries: int = 0
    last_error: str | None = None
    drained_generation: int = 0
    content_reconciles: int = 0
    failing: int = 0
    failing_ids: list[str] = []


class DbSyncResult(OpsResult):
    command: Literal["db sync"] = "db sync"
    caught_up: bool
    write_errors: int = 0  # write attempts the target refused (retried ones included)
    failing: int = 0  # _ids whose writes still failed when the command ended
    collections: dict[str, SyncedCollection] = {}


class CountedCollection(_Shape):
    name: str
    source: int
    target: int


class DbCutoverResult(OpsResult):
    command: Literal["db cutover"] = "db cutover"
    source: str
    target: str
    method: str
    started_at: str = ""
    writes_stopped_at: str = ""
    ready_at: str = ""
    write_pause_seconds: float = 0.0
    stop_call_seconds: float = 0.0
    drain_seconds: float = 0.0
    verify_seconds: float = 0.0
    initial_sync_seconds: float = 0.0
    identical: bool = False
    reverse: bool = False
    collections: list[CountedCollection] = []
    # The full comparison runs before the pause; the pause re-checks only the _ids changed since
    # (ids_rechecked; verify_seconds is that check, count_seconds the counts within it).
    pre_verify_seconds: float = 0.0
    pre_verify_repaired: int = 0
    rounds_before_pause: int = 0
    ids_rechecked: int = 0
    count_seconds: float = 0.0
    # The full comparison again after the switch (outside the pause), --verify-after.
    verify_after: bool = False
    verify_after_seconds: float | None = None
    verify_after_identical: bool | None = None
    verify_after_explained: int = 0
    verify_after_differences: dict[str, list[str]] = {}


# ---------------------------------------------------------------------------------------------
# storage copy


class BlobCopyFigures(_Shape):
    source: str
    destination: str
    total: int = 0
    copied: int = 0
    skipped: int = 0
    failed: int = 0
    bytes_copied: int = 0
    bytes_skipped: int = 0
    server_side: int = 0
    streamed: int = 0
    destination_public: bool | None = None
    failures: dict[str, str] = {}


class UrlRewriteFigures(_Shape):
    old_prefix: str
    new_prefix: str
    rewritten: int = 0
    already: int = 0
    missing: int = 0


class StorageCopyResult(OpsResult):
    command: Literal["storage copy"] = "storage copy"
    copy_: BlobCopyFigures = Field(alias="copy")
    rewrite: UrlRewriteFigures | None = None

    # `copy` is the JSON name; the attribute is `copy_` (BaseModel.copy exists).
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


# ---------------------------------------------------------------------------------------------
# Check reports: migrate check | dns | load, settings export | diff | apply


class CheckRecord(_Shape):
    """One verified fact: passed or not, how long it took, and what was seen."""

    name: str
    ok: bool
    seconds: float
    detail: str


class CheckResult(OpsResult):
    target: str
    ok: bool
    started_at: str
    seconds: float = 0.0
    checks: list[CheckRecord] = []


class MigrateCheckResult(CheckResult):
    command: Literal["migrate check"] = "migrate check"
    test_email: str | None = None
    prompt: str | None = None
    version: str | None = _absent_when_none()
    image_location: str | None = _absent_when_none()
    task_id: str | None = None
    game_id: str | None = None
    kept_game_id: str | None = _absent_when_none()


class MigrateDnsResult(CheckResult):
    command: Literal["migrate dns"] = "migrate dns"
    cname_chain: list[str] | None = _absent_when_none()
    ttl: int | None = _absent_when_none()  # seconds, as the resolver gave HOST's record
    note: str | None = _absent_when_none()
    host_addresses: list[str] | None = _absent_when_none()
    target_addresses: list[str] | None = _absent_when_none()
    url: str | None = _absent_when_none()


class LoadGame(_Shape):
    task_id: str | None = None
    game_id: str | None = None
    status: str | None = None
    seconds: float = 0.0
    error: str | None = None
    image: str | None = None


class EndpointFigures(_Shape):
    requests: int
    errors: int
    requests_per_second: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float = 0.0
    error_samples: list[str] = []


class LoadFigures(_Shape):
    requests: int
    planned_requests: int
    concurrency: int
    seconds: float
    requests_per_second: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    endpoints: dict[str, EndpointFigures] = {}


class MigrateLoadResult(CheckResult):
    command: Literal["migrate load"] = "migrate load"
    games: list[LoadGame] = []
    load: LoadFigures | None = _absent_when_none()


class ShownSetting(_Shape):
    """An app setting as reports show it: secret values masked."""

    name: str
    value: str
    slotSetting: bool = False  # az's own name


class SettingsValidation(_Shape):
    problems: list[str] = []
    not_read_by_paletai: list[str] = []


class AddedOrRemovedSetting(_Shape):
    name: str
    value: str


class ChangedSetting(_Shape):
    name: str
    secret: bool
    old: str | None = _absent_when_none()
    new: str | None = _absent_when_none()
    slotSetting: list[bool] | None = _absent_when_none()  # az's own name


class SettingsDiffFigures(_Shape):
    added: list[AddedOrRemovedSetting] = []
    removed: list[AddedOrRemovedSetting] = []
    changed: list[ChangedSetting] = []
    unchanged: int = 0


class SettingsExportResult(CheckResult):
    command: Literal["settings export"] = "settings export"
    settings: list[ShownSetting] = []
    validation: dict[str, SettingsValidation] = {}


class SettingsDiffResult(CheckResult):
    command: Literal["settings diff"] = "settings diff"
    diff: SettingsDiffFigures
    validation: dict[str, SettingsValidation] = {}


class SettingsApplyResult(CheckResult):
    command: Literal["settings apply"] = "settings apply"
    app: str
    resource_group: str
    slot: str | None = None
    dry_run: bool = False
    settings: list[ShownSetting] = []
    validation: dict[str, SettingsValidation] = {}
    az_argv: list[str] | None = _absent_when_none()


class DeployInfraResult(OpsResult):
    """`deploy infra` (Phase 1 "Deploy Infrastructure"): the deployment, its outputs, or the
    one-line error that stopped it. Written when the command finishes, failed or not."""

    command: Literal["deploy infra"] = "deploy infra"
    resource_group: str
    location: str
    deployment_name: str
    template: str
    parameters_file: str | None = None
    overrides: list[str] = []  # --set NAME (never a secret: those come from the environment)
    started_at: str
    seconds: float = 0.0
    ok: bool
    what_if: bool = False
    changes: list[str] | None = _absent_when_none()  # --what-if: "Create <resource id>", ...
    outputs: dict[str, Any] = {}
    outputs_file: str | None = _absent_when_none()
    error: str | None = _absent_when_none()


class DeployAppResult(OpsResult):
    """`deploy app` (Phase 2, method B "ZIP Deploy"): the package deployed, or why not."""

    command: Literal["deploy app"] = "deploy app"
    app: str
    resource_group: str
    package: str
    package_bytes: int | None = None
    package_sha256: str | None = None
    started_at: str
    seconds: float = 0.0
    ok: bool
    error: str | None = _absent_when_none()


class DeployVerifyResult(CheckResult):
    """`deploy verify`: target is the resource group; the checks are names.INFRA_*, ALERT_*,
    COST_*, SECURITY_*."""

    command: Literal["deploy verify"] = "deploy verify"
    app: str | None = _absent_when_none()
    expected_sku: str = "B1"
    plan_sku: str | None = _absent_when_none()
    default_host_name: str | None = _absent_when_none()


class DeployDomainResult(CheckResult):
    """`deploy domain add`: target is the host; names.DOMAIN_* then the `migrate dns` checks."""

    command: Literal["deploy domain add"] = "deploy domain add"
    app: str
    resource_group: str
    default_host_name: str | None = _absent_when_none()
    thumbprint: str | None = _absent_when_none()
    dry_run: bool = False
    cname_chain: list[str] | None = _absent_when_none()
    ttl: int | None = _absent_when_none()  # seconds, as the resolver gave HOST's record
    note: str | None = _absent_when_none()
    host_addresses: list[str] | None = _absent_when_none()
    target_addresses: list[str] | None = _absent_when_none()
    url: str | None = _absent_when_none()


class MigratePreflightResult(CheckResult):
    """Pre-Migration "Information Gathering" and "Database Preparation", as measured."""

    command: Literal["migrate preflight"] = "migrate preflight"
    tenant: str | None = None
    subscription: str | None = None
    account: str | None = None  # az's signed-in user (UPN) or service principal (app id)
    account_type: str | None = None  # "user" | "servicePrincipal"
    mongodb_hosts: str | None = None  # never the credentials
    mongodb_version: str | None = None
    mongodb_data_bytes: int | None = None
    change_streams: bool | None = None
    cosmos_db: bool = False
    ai_provider: str | None = None
    region: str | None = None  # App Service's REGION_NAME where preflight ran, if it did
    site: str | None = None  # App Service's WEBSITE_SITE_NAME
    warnings: list[str] = []


# ---------------------------------------------------------------------------------------------
# deploy decommission


class DeployDecommissionResult(OpsResult):
    """One stage of Phase 7 (stop, delete-app, delete-group), done or refused, and why."""

    command: Literal["deploy decommission"] = "deploy decommission"
    stage: Literal["stop", "delete-app", "delete-group"]
    app: str
    resource_group: str
    cutover_at: str
    at: str
    days_since_cutover: float
    wait_days: int
    forced: bool = False
    dry_run: bool = False
    done: bool = False
    refused: str | None = None
    backup: str | None = None
    backup_finished_at: str | None = None
    az_lines: list[str] = []


# ---------------------------------------------------------------------------------------------
# migrate inventory | insights | logs (az CLI reads of the old and the new app)


class HostnameBinding(_Shape):
    """A host name of the app and how TLS is bound to it (az's sslState: Disabled,
    SniEnabled, IpBasedEnabled)."""

    name: str
    custom: bool
    ssl_state: str | None = None
    thumbprint: str | None = None


class TlsCertificate(_Shape):
    subject_name: str | None = None
    host_names: list[str] = []
    thumbprint: str | None = None
    expiration: str | None = None
    issuer: str | None = None


class ServicePlan(_Shape):
    name: str
    sku: str | None = None
    tier: str | None = None
    capacity: int | None = None
    location: str | None = None
    kind: str | None = None


class InsightsComponent(_Shape):
    """An Application Insights component (its data-plane `app_id`, never its keys)."""

    name: str
    id: str | None = None
    app_id: str


class DailyRequests(_Shape):
    day: str
    requests: int
    failed: int


class TrafficSummary(_Shape):
    days: int
    total_requests: int = 0
    failed_requests: int = 0
    average_daily_requests: float = 0.0
    failure_rate: float = 0.0
    daily: list[DailyRequests] = []


class Integration(_Shape):
    """A service the settings name, described without credentials."""

    name: str
    detail: str


class MigrateInventoryResult(CheckResult):
    command: Literal["migrate inventory"] = "migrate inventory"
    app: str
    resource_group: str
    days: int = 7
    state: str | None = None
    default_host_name: str | None = None
    settings: list[ShownSetting] = []
    settings_file: str | None = _absent_when_none()
    hostnames: list[HostnameBinding] = []
    certificates: list[TlsCertificate] = []
    plan: ServicePlan | None = None
    insights: InsightsComponent | None = None
    traffic: TrafficSummary | None = None
    integrations: list[Integration] = []


class InsightsFigures(_Shape):
    """Application Insights' figures over the window (durations in milliseconds)."""

    requests: int = 0
    failed: int = 0
    failure_rate: float = 0.0
    server_errors: int = 0
    exceptions: int = 0
    avg_ms: float | None = None
    p95_ms: float | None = None
    top_problems: list[str] = []


class MigrateInsightsResult(CheckResult):
    command: Literal["migrate insights"] = "migrate insights"
    app: str
    resource_group: str
    minutes: int
    insights: InsightsComponent | None = None
    figures: InsightsFigures | None = None


class MigrateLogsResult(CheckResult):
    command: Literal["migrate logs"] = "migrate logs"
    app: str
    resource_group: str
    seconds_listened: float
    lines: int = 0
    activity_lines: int = 0
    error_lines: int = 0
    tracebacks: int = 0
    database_failures: int = 0
    samples: list[str] = []


# ---------------------------------------------------------------------------------------------
# migrate rehearse


class TrafficFigures(_Shape):
    """What the rehearsal's live clients saw, and the writes missing on the new side."""

    requests: int = 0
    reads: int = 0
    read_errors: int = 0
    writes: int = 0
    by_target: dict[str, int] = {}
    acknowledged_games: int = 0
    acknowledged_likes: int = 0
    maintenance_503: int = 0
    unexpected_errors: int = 0
    unexpected_samples: list[str] = []
    refused_window_seconds: float | None = None
    refused_outside_pause: int = 0
    pause_window_seconds: float | None = None
    mean_ms: float = 0.0
    lost_writes: int = 0
    lost_samples: list[str] = []


class RehearsalStep(_Shape):
    step: str
    at_seconds: float
    seconds: float = 0.0
    attempts: int | None = _absent_when_none()


class RehearseResult(OpsResult):
    command: Literal["migrate rehearse"] = "migrate rehearse"
    started_at: str
    seconds: float = 0.0
    ok: bool = False
    traffic: TrafficFigures | None = None
    steps: list[RehearsalStep] = []
    write_pause_seconds: float | None = None
    pids: dict[str, int] = {}
    urls: dict[str, str] = {}
    storage_first_copy: BlobCopyFigures | None = None
    order: str = ""


AnyResult = Annotated[
    DbBackupResult
    | DbRestoreResult
    | DbVerifyResult
    | DbSyncResult
    | DbCutoverResult
    | DbRepairLikesResult
    | StorageCopyResult
    | MigrateCheckResult
    | MigrateDnsResult
    | MigrateLoadResult
    | SettingsExportResult
    | SettingsDiffResult
    | SettingsApplyResult
    | DeployInfraResult
    | DeployAppResult
    | DeployVerifyResult
    | DeployDomainResult
    | RehearseResult
    | DeployDecommissionResult
    | MigratePreflightResult
    | MigrateInventoryResult
    | MigrateInsightsResult
    | MigrateLogsResult,
    Field(discriminator="command"),
]
_ANY_RESULT: TypeAdapter[AnyResult] = TypeAdapter(AnyResult)
# The model of each command, by the name in its `command` field (the check reports apart: a
# CheckReport becomes one of them).
CHECK_MODELS: dict[str, type[CheckResult]] = {
    model.model_fields["command"].default: model
    for model in (
        MigrateCheckResult,
        MigrateDnsResult,
        MigrateLoadResult,
        SettingsExportResult,
        SettingsDiffResult,
        SettingsApplyResult,
        DeployVerifyResult,
        DeployDomainResult,
        MigratePreflightResult,
        MigrateInventoryResult,
        MigrateInsightsResult,
        MigrateLogsResult,
    )
}
MODELS: dict[str, type[OpsResult]] = {
    **{
        model.model_fields["command"].default: model
        for model in (
            DbBackupResult,
            DbRestoreResult,
            DbVerifyResult,
            DbSyncResult,
            DbCutoverResult,
            DbRepairLikesResult,
            StorageCopyResult,
            RehearseResult,
            DeployInfraResult,
            DeployAppResult,
            DeployDecommissionResult,
        )
    },
    **CHECK_MODELS,
}


def parse_result(data: Any) -> AnyResult:
    """The model of a `--json` result, chosen by its `command`; ValidationError otherwise."""
    return _ANY_RESULT.validate_python(data)


def dump_result(result: OpsResult) -> dict[str, Any]:
    """A result as its `--json` file holds it."""
    return result.model_dump(mode="json", by_alias=True)
