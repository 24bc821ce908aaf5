"""The creative service's optional API key (issue 32, point 4): with one, the write endpoints
(product registration, feedback) answer 401 without it, as a short JSON error; reads stay
open; without one, nothing changes. ``staging serve --api-key-file`` refuses a file it
cannot use before anything starts."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from staging import StagingEngine  # noqa: E402
from staging.errors import StagingError  # noqa: E402
from staging.service.api import api_key_from, create_service  # noqa: E402
from tests.helpers.images import png_bytes as _png  # noqa: E402
from tests.helpers.rooms import product_shot  # noqa: E402

KEY = "k3y-0f-the-serv1ce"


def _client(tmp_path, api_key: str | None) -> TestClient:
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "no-models"))
    return TestClient(create_service(engine, tmp_path / "svc", api_key=api_key))


def _register(client: TestClient, headers: dict[str, str] | None = None, id: str = "lamp-1"):  # noqa: A002
    shot, _ = product_shot()
    return client.post(
        "/v1/products", data={"id": id, "category": "lamp"},
        files={"image": ("lamp.png", _png(shot), "image/png")}, headers=headers,
    )  # fmt: skip


def _feedback(client: TestClient, headers: dict[str, str] | None = None):
    event = {"product_id": "lamp-1", "theme": "evening_living", "clicked": True}
    return client.post("/v1/feedback", json=event, headers=headers)


@pytest.fixture()
def guarded(tmp_path):
    client = _client(tmp_path, KEY)
    assert _register(client, {"Authorization": f"Bearer {KEY}"}).status_code == 201
    return client, tmp_path / "svc"


def test_without_a_key_the_writes_are_open_as_before(tmp_path):
    client = _client(tmp_path, None)
    assert _register(client).status_code == 201
    assert _feedback(client).status_code == 200
    assert _register(client, {"Authorization": "Bearer anything"}, id="lamp-2").status_code == 201


@pytest.mark.parametrize("write", [_register, _feedback], ids=["products", "feedback"])
@pytest.mark.parametrize(
    ("headers", "text"),
    [
        (None, "needs the service's API key"),
        ({"Authorization": "Bearer wrong"}, "Wrong API key"),
        ({"X-API-Key": "wrong"}, "Wrong API key"),
        ({"Authorization": f"Bearer {KEY}x"}, "Wrong API key"),  # a longer key is not a match
        ({"Authorization": f"Bearer {KEY[:-1]}"}, "Wrong API key"),  # nor a prefix of it
        ({"Authorization": f"Basic {KEY}"}, "needs the service's API key"),  # not a bearer
        ({"Authorization": "Bearer"}, "needs the service's API key"),
        ({"X-API-Key": ""}, "needs the service's API key"),
    ],
)  # fmt: skip
def test_a_write_without_the_right_key_is_a_short_json_401(guarded, write, headers, text):
    client, root = guarded
    before = client.get("/metrics").text
    response = write(client, headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and text in body["error"]
    assert len(body["error"]) < 120 and KEY not in response.text
    assert str(root) not in response.text and "Traceback" not in response.text
    assert client.get("/metrics").text == before  # no feedback counted, no product added


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer {KEY}"}, {"X-API-Key": KEY},
     {"Authorization": "Bearer wrong", "X-API-Key": KEY}],
    ids=["bearer", "lowercase", "x-api-key", "either"],
)  # fmt: skip
def test_the_right_key_in_either_header_writes(guarded, headers):
    client, _ = guarded
    assert _register(client, headers, id="lamp-2").status_code == 201
    assert _feedback(client, headers).status_code == 200
    assert 'staging_requests_total{kind="feedback"} 1' in client.get("/metrics").text


def test_reads_stay_open_with_a_key(guarded):
    client, _ = guarded
    creative = client.get("/v1/creative/lamp-1", params={"placement": "120x120"})
    assert creative.status_code == 200 and creative.headers["x-creative"] == "fallback"
    assert client.get(f"/v1/jobs/{creative.headers['x-job']}").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/metrics").status_code == 200
    assert client.get("/v1/creative/nope").status_code == 404  # errors as before, not 401


def test_the_openapi_schema_names_the_two_ways_to_send_the_key(guarded):
    client, _ = guarded
    schema = client.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    assert "security" in schema["paths"]["/v1/feedback"]["post"]
    assert "security" not in schema["paths"]["/v1/creative/{product_id}"]["get"]


def test_the_key_comes_from_a_file_or_the_environment(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(f"  {KEY}\n")
    assert api_key_from(key_file, environ={}) == KEY  # stripped
    assert api_key_from(None, environ={"STAGING_API_KEY": KEY}) == KEY
    assert api_key_from(None, environ={}) is None  # open
    (tmp_path / "empty").write_text(" \n")
    (tmp_path / "spaced").write_text("two words\n")
    refused = [
        (lambda: api_key_from(tmp_path / "missing", environ={}), "Cannot read"),
        (lambda: api_key_from(tmp_path / "empty", environ={}), "is empty"),
        (lambda: api_key_from(tmp_path, environ={}), "Cannot read"),  # a folder
        (lambda: api_key_from(tmp_path / "spaced", environ={}), "without spaces"),
        (lambda: api_key_from(None, environ={"STAGING_API_KEY": " "}), "set but empty"),
        (lambda: api_key_from(key_file, environ={"STAGING_API_KEY": KEY}), "one way"),
    ]
    for call, text in refused:
        with pytest.raises(StagingError, match=text):
            call()
    with pytest.raises(StagingError):
        create_service(None, tmp_path / "svc", api_key="")  # an empty key is never "open"


@pytest.fixture()
def serve(tmp_path, monkeypatch):
    """``staging serve`` through CliRunner, with uvicorn's server not started: the app it
    would have served, and the command's result."""
    import uvicorn
    from typer.testing import CliRunner

    from staging.cli import app

    served = []

    def run(self, sockets=None):
        served.append(self.config.app)
        self.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.delenv("STAGING_API_KEY", raising=False)
    monkeypatch.delenv("STAGING_API_KEY_FILE", raising=False)

    def invoke(*args: str, env: dict[str, str] | None = None):
        command = ["--models-dir", str(tmp_path / "none"), "serve", "--root", str(tmp_path / "svc")]
        result = CliRunner().invoke(app, command + list(args), env=env)
        return result, (TestClient(served[-1]) if served else None)

    return invoke


@pytest.mark.parametrize(
    ("content", "text"), [(None, "Cannot read the API key file"), ("\n", "is empty")]
)
def test_serve_refuses_a_missing_or_empty_key_file_readably(tmp_path, serve, content, text):
    key_file = tmp_path / "key"
    if content is not None:
        key_file.write_text(content)
    result, client = serve("--api-key-file", str(key_file))
    assert result.exit_code == 2 and client is None  # nothing started
    assert text in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, StagingError)  # handled, not raised


def test_serve_guards_the_writes_with_the_key_file_or_variable(tmp_path, serve):
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    for args, env in [(["--api-key-file", str(key_file)], None),
                      ([], {"STAGING_API_KEY_FILE": str(key_file)}),
                      ([], {"STAGING_API_KEY": KEY})]:  # fmt: skip
        result, client = serve(*args, env=env)
        assert result.exit_code == 0, result.output
        assert _register(client).status_code == 401
        assert _register(client, {"X-API-Key": KEY}).status_code == 201


def test_serve_without_a_key_says_the_writes_are_open(serve):
    result, client = serve()
    assert result.exit_code == 0, result.output
    assert "Write endpoints open" in result.output
    assert _register(client).status_code == 201
