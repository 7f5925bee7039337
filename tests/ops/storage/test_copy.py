"""`paletai storage copy` between two storage accounts (Azurite), resumable and verified."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.blob import (
    AccountSasPermissions,
    BlobBlock,
    BlobServiceClient,
    ContentSettings,
    ResourceTypes,
    generate_account_sas,
)
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient
from pymongo import MongoClient
from typer.testing import CliRunner

from paletai.ops.storage.cli import storage_app
from paletai.ops.storage.copy import BlobOutcome, ContainerCopier
from tests.fixtures.cloud import DEV_ACCOUNT, DEV_KEY

runner = CliRunner()
N_BLOBS = 7


def blob_bytes(i: int) -> bytes:
    return f"png-{i}-".encode() * (200 + 37 * i)


@pytest.fixture
def source(azurite: str, container_name: str) -> Iterator[BlobServiceClient]:
    """The old account's container, public like the app's, with N_BLOBS images.

    One was uploaded in blocks, so it has no Content-MD5 (as large uploads do).
    """
    service = BlobServiceClient.from_connection_string(azurite)
    container = service.create_container(container_name, public_access="blob")
    for i in range(N_BLOBS - 1):
        container.upload_blob(
            f"g{i}.png",
            blob_bytes(i),
            content_settings=ContentSettings(
                content_type="image/png", cache_control="public, max-age=31536000, immutable"
            ),
        )
    blocks = container.get_blob_client(f"g{N_BLOBS - 1}.png")
    data = blob_bytes(N_BLOBS - 1)
    blocks.stage_block("YmxvY2sx", data[:500])
    blocks.stage_block("YmxvY2sy", data[500:])
    blocks.commit_block_list(
        [BlobBlock("YmxvY2sx"), BlobBlock("YmxvY2sy")],
        content_settings=ContentSettings(content_type="image/png"),
    )
    assert not blocks.get_blob_properties().content_settings.content_md5
    yield service
    service.close()


def dest_contents(conn: str, container: str) -> dict[str, bytes]:
    with BlobServiceClient.from_connection_string(conn) as service:
        client = service.get_container_client(container)
        return {b.name: client.download_blob(b.name).readall() for b in client.list_blobs()}


def expected_contents() -> dict[str, bytes]:
    return {f"g{i}.png": blob_bytes(i) for i in range(N_BLOBS)}


def run_copy(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "result.json"
    result = runner.invoke(storage_app, ["copy", *args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["command"] == "storage copy"
    assert data["schema_version"] == 1
    return data


def test_copy_between_accounts_resumes_and_skips(
    source: BlobServiceClient,
    azurite: str,
    azurite_new_account: str,
    container_name: str,
    tmp_path: Path,
) -> None:
    args = ["--from", azurite, "--to", azurite_new_account, "--container", container_name]

    first = run_copy(tmp_path, *args, "--limit", "3")["copy"]
    assert (first["copied"], first["skipped"], first["failed"]) == (3, 0, 0)
    assert first["server_side"] == 3  # same emulator: the destination reads the source itself
    assert len(dest_contents(azurite_new_account, container_name)) == 3

    second = run_copy(tmp_path, *args)["copy"]
    assert (second["copied"], second["skipped"], second["failed"]) == (N_BLOBS - 3, 3, 0)

    third = run_copy(tmp_path, *args)["copy"]
    assert (third["copied"], third["skipped"], third["failed"]) == (0, N_BLOBS, 0)
    assert third["bytes_skipped"] == sum(len(v) for v in expected_contents().values())

    assert dest_contents(azurite_new_account, container_name) == expected_contents()
    with BlobServiceClient.from_connection_string(azurite_new_account) as new:
        container = new.get_container_client(container_name)
        assert container.get_container_properties().public_access == "blob"
        props = container.get_blob_client("g0.png").get_blob_properties()
        assert props.content_settings.content_type == "image/png"
        assert props.content_settings.cache_control == "public, max-age=31536000, immutable"
        # The MD5 computed for the block blob is recorded on the copy.
        block_copy = container.get_blob_client(f"g{N_BLOBS - 1}.png").get_blob_properties()
        recorded = block_copy.content_settings.content_md5
        assert recorded is not None
        assert bytes(recorded) == hashlib.md5(blob_bytes(N_BLOBS - 1)).digest()
        url = container.get_blob_client("g1.png").url
    assert httpx.get(url).content == blob_bytes(1)  # anonymously readable in the new account


class Killed(Exception):
    pass


async def test_interrupted_run_resumes_without_copying_twice(
    source: BlobServiceClient, azurite: str, azurite_new_account: str, container_name: str
) -> None:
    done: list[BlobOutcome] = []

    def die_after_two(outcome: BlobOutcome) -> None:
        # A killed process reports nothing more: another worker may still finish a blob in the
        # same turn of the event loop before the cancellation reaches it (that copy is real and
        # the rerun skips it too), but it is not part of what the killed run reported.
        if len(done) >= 2:
            return
        done.append(outcome)
        if len(done) == 2:
            raise Killed

    async with (
        AsyncBlobServiceClient.from_connection_string(azurite) as src,
        AsyncBlobServiceClient.from_connection_string(azurite_new_account) as dst,
    ):
        with pytest.raises(Killed):
            await ContainerCopier(src, dst, container_name, concurrency=2).run(
                on_outcome=die_after_two
            )
        copied_before = {o.name for o in done if o.action == "copied"}
        assert len(copied_before) == 2

        rerun: list[BlobOutcome] = []
        report = await ContainerCopier(src, dst, container_name, concurrency=2).run(
            on_outcome=rerun.append
        )
    assert report.failed == 0
    assert report.copied + report.skipped == N_BLOBS
    # What the killed run finished is skipped, not copied again.
    skipped_now = {o.name for o in rerun if o.action == "skipped"}
    copied_now = {o.name for o in rerun if o.action == "copied"}
    assert copied_before <= skipped_now
    assert not copied_before & copied_now
    assert dest_contents(azurite_new_account, container_name) == expected_contents()


async def test_changed_destination_blob_is_copied_again(
    source: BlobServiceClient, azurite: str, azurite_new_account: str, container_name: str
) -> None:
    async with (
        AsyncBlobServiceClient.from_connection_string(azurite) as src,
        AsyncBlobServiceClient.from_connection_string(azurite_new_account) as dst,
    ):
        await ContainerCopier(src, dst, container_name).run()
        # Same length, different bytes: only the MD5 tells them apart.
        tampered = bytearray(blob_bytes(2))
        tampered[0] ^= 0xFF
        await dst.get_blob_client(container_name, "g2.png").upload_blob(
            bytes(tampered), overwrite=True
        )
        report = await ContainerCopier(src, dst, container_name).run()
    assert (report.copied, report.skipped, report.failed) == (1, N_BLOBS - 1, 0)
    assert dest_contents(azurite_new_account, container_name)["g2.png"] == blob_bytes(2)


def test_falls_back_to_streaming_when_server_copy_is_impossible(
    source: BlobServiceClient,
    azurite: str,
    azurite_other_instance: str,
    container_name: str,
    tmp_path: Path,
) -> None:
    # A separate emulator cannot fetch the source (CannotVerifyCopySource), like a firewalled
    # account: every blob must be streamed through this process instead, and verified.
    args = ["--from", azurite, "--to", azurite_other_instance, "--container", container_name]
    args += ["--to-container", "moved-images"]
    report = run_copy(tmp_path, *args)["copy"]
    assert (report["copied"], report["failed"]) == (N_BLOBS, 0)
    assert (report["server_side"], report["streamed"]) == (0, N_BLOBS)
    assert dest_contents(azurite_other_instance, "moved-images") == expected_contents()

    again = run_copy(tmp_path, *args)["copy"]
    assert (again["copied"], again["skipped"]) == (0, N_BLOBS)


def test_rewrite_urls_points_games_at_the_new_account(
    source: BlobServiceClient,
    azurite: str,
    azurite_new_account: str,
    container_name: str,
    mongo_uri: str,
    db_name: str,
    tmp_path: Path,
) -> None:
    old_prefix = source.get_container_client(container_name).url
    with BlobServiceClient.from_connection_string(azurite_new_account) as new:
        new_prefix = new.get_container_client(container_name).url
    mongo: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
    games = mongo[db_name]["games"]
    try:
        games.insert_many(
            [
                {"_id": "a", "image_url": f"{old_prefix}/g0.png"},
                {"_id": "b", "image_url": f"{old_prefix}/g5.png"},
                {"_id": "c", "image_url": f"{old_prefix}/gone.png"},  # no such blob
                {"_id": "d", "image_url": "/static/game-images/d.png"},
                {"_id": "e", "image_url": None},
            ]
        )
        args = ["--from", azurite, "--to", azurite_new_account, "--container", container_name]
        args += ["--rewrite-urls", "--db-uri", mongo_uri, "--db", db_name]
        first = run_copy(tmp_path, *args)["rewrite"]
        assert (first["rewritten"], first["missing"], first["already"]) == (2, 1, 0)
        urls = {doc["_id"]: doc["image_url"] for doc in games.find()}
        assert urls == {
            "a": f"{new_prefix}/g0.png",
            "b": f"{new_prefix}/g5.png",
            "c": f"{old_prefix}/gone.png",
            "d": "/static/game-images/d.png",
            "e": None,
        }
        assert httpx.get(urls["a"]).content == blob_bytes(0)

        second = run_copy(tmp_path, *args)["rewrite"]
        assert (second["rewritten"], second["already"]) == (0, 2)
    finally:
        mongo.drop_database(db_name)
        mongo.close()


def test_missing_source_container_is_a_clear_error(
    azurite: str, azurite_new_account: str, container_name: str
) -> None:
    result = runner.invoke(
        storage_app,
        ["copy", "--from", azurite, "--to", azurite_new_account, "--container", container_name],
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "AccountKey" not in result.output


def test_read_only_sas_source_is_enough(
    source: BlobServiceClient,
    azurite: str,
    azurite_new_account: str,
    container_name: str,
    tmp_path: Path,
) -> None:
    # The old account may be handed over as a read-only SAS rather than its key.
    sas = generate_account_sas(
        DEV_ACCOUNT,
        DEV_KEY,
        resource_types=ResourceTypes(container=True, object=True),
        permission=AccountSasPermissions(read=True, list=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    endpoint = azurite.split("BlobEndpoint=")[1].rstrip(";")
    read_only = f"BlobEndpoint={endpoint};SharedAccessSignature={sas}"
    args = ["--from", read_only, "--to", azurite_new_account, "--container", container_name]
    data = run_copy(tmp_path, *args)["copy"]
    assert (data["copied"], data["failed"], data["server_side"]) == (N_BLOBS, 0, N_BLOBS)
    assert "sig=" not in data["source"]
    assert dest_contents(azurite_new_account, container_name) == expected_contents()


def test_private_destination_container_is_flagged(
    source: BlobServiceClient, azurite: str, azurite_new_account: str, container_name: str
) -> None:
    with BlobServiceClient.from_connection_string(azurite_new_account) as new:
        new.create_container(container_name)  # created by hand, private
    result = runner.invoke(
        storage_app,
        ["copy", "--from", azurite, "--to", azurite_new_account, "--container", container_name],
    )
    assert result.exit_code == 0, result.output
    assert "destination is private" in " ".join(result.output.split())


async def test_a_blob_that_cannot_be_copied_is_reported_not_fatal(
    source: BlobServiceClient, azurite: str, azurite_new_account: str, container_name: str
) -> None:
    async with (
        AsyncBlobServiceClient.from_connection_string(azurite) as src,
        AsyncBlobServiceClient.from_connection_string(azurite_new_account) as dst,
    ):
        copier = ContainerCopier(src, dst, container_name)
        blobs = await copier.list_source()
        # Deleted between the listing and its copy (as when the old app still runs).
        await src.get_blob_client(container_name, "g3.png").delete_blob()
        report = await copier.run(blobs)
    assert (report.copied, report.failed) == (N_BLOBS - 1, 1)
    assert set(report.failures) == {"g3.png"}
    assert "g3.png" not in report.present
    assert "g3.png" not in dest_contents(azurite_new_account, container_name)
