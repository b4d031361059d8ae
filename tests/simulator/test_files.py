"""Files: upload, import from a URL, the service's basic checks, through the real openai SDK."""
from __future__ import annotations

import http.server
import threading
from typing import Iterator

import openai
import pytest
from openai.types import FileObject

from .conftest import chat_jsonl, upload


def test_upload_goes_pending_then_processed_and_content_round_trips(oai, admin):
    data = chat_jsonl(12)
    created = oai.files.create(file=("train.jsonl", data), purpose="fine-tune")
    assert created.id.startswith("file-") and len(created.id) == len("file-") + 32
    assert created.status == "pending"
    assert created.bytes == len(data)

    done = oai.files.wait_for_processing(created.id, poll_interval=0.05, max_wait_seconds=10)
    assert done.status == "processed"
    assert oai.files.content(created.id).read() == data
    assert created.id in [f.id for f in oai.files.list()]
    # wait_for_processing polled files.retrieve until the state changed
    polls = admin.requests(path_regex=f"^/openai/files/{created.id}$", method="GET")
    assert len(polls) >= 2 and all(p["query"].startswith("api-version=") for p in polls)


def test_processing_delay_follows_the_simulated_clock(oai, admin):
    admin.configure(file_processing_seconds=3600)
    created = upload(oai, chat_jsonl(10), wait=False)
    assert oai.files.retrieve(created.id).status == "pending"
    admin.advance(3599)
    assert oai.files.retrieve(created.id).status == "pending"
    admin.advance(2)
    assert oai.files.retrieve(created.id).status == "processed"


def test_delete_then_gone(oai, admin):
    f = upload(oai, chat_jsonl(10))
    deleted = oai.files.delete(f.id)
    assert deleted.deleted is True and deleted.id == f.id
    with pytest.raises(openai.NotFoundError) as err:
        oai.files.retrieve(f.id)
    assert err.value.body["code"] == "notFound"


@pytest.mark.parametrize("data, expected", [
    (chat_jsonl(12, bom=True), "processed"),                                   # BOM is fine
    ("é".encode("latin-1") + b"\n" + chat_jsonl(12), "UTF-8"),                 # Latin-1 byte
    (chat_jsonl(12).decode().encode("utf-16"), "UTF-8"),                       # UTF-16
    (chat_jsonl(9), "at least 10"),                                            # too few examples
    (chat_jsonl(12) + b"{not json}\n", "not valid JSON"),                      # broken line
    (b'{"text": "hello"}\n' * 12, "messages"),                                 # unknown shape
])
def test_the_services_basic_checks(oai, admin, data, expected):
    done = upload(oai, data)
    if expected == "processed":
        assert done.status == "processed"
    else:
        assert done.status == "error"
        assert expected in done.status_details


def test_size_limit(oai, admin):
    admin.configure(max_file_bytes=1000)
    done = upload(oai, chat_jsonl(40))
    assert done.status == "error" and "maximum file size" in done.status_details
    with pytest.raises(openai.NotFoundError):  # too large to keep: no content
        oai.files.content(done.id)


def test_file_error_fault(oai, admin):
    admin.inject_fault("file_error", message="simulated: training data rejected")
    bad = upload(oai, chat_jsonl(12))
    good = upload(oai, chat_jsonl(12))
    assert (bad.status, bad.status_details) == ("error", "simulated: training data rejected")
    assert good.status == "processed"


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def blob_server() -> Iterator[tuple[str, dict]]:
    """A plain-HTTP server on 127.0.0.1 standing in for a blob SAS URL (as Azurite serves it)."""
    blobs: dict[str, bytes] = {}
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            name = self.path.split("?", 1)[0]
            if name not in blobs:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(blobs[name])))
            self.end_headers()
            self.wfile.write(blobs[name])

        def log_message(self, *args):
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", {"blobs": blobs, "hits": hits}
    server.shutdown()


def _import(oai, url: str, name: str = "big.jsonl") -> FileObject:
    return oai.post("/files/import", body={"purpose": "fine-tune", "filename": name, "content_url": url},
                    cast_to=FileObject)


def test_import_fetches_the_url(oai, admin, blob_server):
    base, store = blob_server
    data = chat_jsonl(30, tag="imported")
    store["blobs"]["/datasets/train.jsonl"] = data
    created = _import(oai, f"{base}/datasets/train.jsonl?sv=2024&sig=secret")
    assert created.status == "pending" and created.filename == "big.jsonl"
    done = oai.files.wait_for_processing(created.id, poll_interval=0.05, max_wait_seconds=10)
    assert done.status == "processed" and done.bytes == len(data)
    assert oai.files.content(created.id).read() == data
    assert store["hits"] == ["/datasets/train.jsonl?sv=2024&sig=secret"]


def test_import_of_a_missing_blob_ends_in_error_without_leaking_the_sas(oai, admin, blob_server):
    base, _ = blob_server
    created = _import(oai, f"{base}/datasets/missing.jsonl?sig=secret")
    done = oai.files.wait_for_processing(created.id, poll_interval=0.05, max_wait_seconds=10)
    assert done.status == "error"
    assert "fileImportFailed" in done.status_details and "404" in done.status_details
    assert "secret" not in done.status_details


def test_import_refuses_a_bad_body(oai, admin):
    with pytest.raises(openai.BadRequestError) as err:
        oai.post("/files/import", body={"purpose": "fine-tune", "filename": "x.jsonl", "content_url": "ftp://x"},
                 cast_to=FileObject)
    assert err.value.body["code"] == "invalidPayload"


def test_list_filters_by_purpose_and_pages(oai, admin):
    ids = [upload(oai, chat_jsonl(10), wait=False).id for _ in range(3)]
    first = oai.files.list(purpose="fine-tune", limit=2)
    assert [f.id for f in first.data] == ids[::-1][:2] and first.has_more
    rest = oai.files.list(purpose="fine-tune", limit=2, after=first.data[-1].id)
    assert [f.id for f in rest.data] == [ids[0]] and not rest.has_more
    assert oai.files.list(purpose="fine-tune-results").data == []
