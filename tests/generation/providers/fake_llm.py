"""A fake LLM provider: a real HTTP server speaking OpenAI, Azure OpenAI and Anthropic.

The real SDKs talk to it over the network, so the providers are tested as they run in
production. Each test scripts it with a queue of planned answers and reads back the requests.

    with FakeLLM() as fake:
        fake.plan(error(429, headers={"Retry-After": "1"}), ok_game())
        settings = Settings(OPENAI_API_KEY=..., OPENAI_BASE_URL=fake.openai_base_url, ...)

Endpoints: POST /v1/chat/completions (OpenAI), POST /openai/deployments/{d}/chat/completions
(Azure), POST /v1/messages (Anthropic); each answers JSON, or SSE when the body says stream.
With an empty queue every request gets a valid game (after `default_delay`).

Standalone, for pipeline tests and benchmarks with a real worker process:

    python tests/generation/providers/fake_llm.py --port 8765 --delay 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

VALID_GAME_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fake Dodge</title>
<style>
  html, body { margin: 0; height: 100%; background: #111; overflow: hidden; }
  canvas { display: block; width: 100vw; height: 100vh; touch-action: none; }
</style>
</head>
<body>
<canvas id="game"></canvas>
<script>
const canvas = document.getElementById("game");
const ctx = canvas.getContext("2d");
let W = 0, H = 0, player, rocks, score, over, keys = {};
function resize() { W = canvas.width = innerWidth; H = canvas.height = innerHeight; }
function reset() { player = { x: W / 2, y: H - 40 }; rocks = []; score = 0; over = false; }
addEventListener("resize", resize);
addEventListener("keydown", (e) => { keys[e.key] = true; if (over && e.key === " ") reset(); });
addEventListener("keyup", (e) => { keys[e.key] = false; });
canvas.addEventListener("pointerdown", (e) => { if (over) reset(); player.x = e.clientX; });
canvas.addEventListener("pointermove", (e) => { player.x = e.clientX; });
function step() {
  if (!over) {
    if (keys.ArrowLeft) player.x -= 6;
    if (keys.ArrowRight) player.x += 6;
    if (Math.random() < 0.05) rocks.push({ x: Math.random() * W, y: -10 });
    for (const r of rocks) r.y += 4;
    rocks = rocks.filter((r) => r.y < H + 20);
    score += 1;
    if (rocks.some((r) => Math.hypot(r.x - player.x, r.y - player.y) < 18)) over = true;
  }
  ctx.fillStyle = "#111"; ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = "#4cf"; ctx.fillRect(player.x - 10, player.y - 10, 20, 20);
  ctx.fillStyle = "#f64"; for (const r of rocks) ctx.fillRect(r.x - 8, r.y - 8, 16, 16);
  ctx.fillStyle = "#fff"; ctx.font = "20px sans-serif"; ctx.fillText("Score " + score, 10, 30);
  if (over) ctx.fillText("Game over - tap or press space", W / 2 - 140, H / 2);
  requestAnimationFrame(step);
}
resize(); reset(); step();
</script>
</body>
</html>
"""

# Fails validation: an external script and no playable root.
INVALID_GAME_HTML = """<!DOCTYPE html>
<html><head><title>Broken</title>
<script src="https://cdn.example.com/engine.js"></script></head>
<body><p>Loading...</p></body></html>
"""


def game(title: str = "Fake Dodge", html: str = VALID_GAME_HTML, **labels: str) -> dict[str, str]:
    """A game answer in the providers' schema (html last, as the schema asks)."""
    return {
        "title": title,
        "description": labels.get("description", "Dodge the falling rocks."),
        "controls": labels.get("controls", "Arrow keys or drag"),
        "html": html,
    }


@dataclass
class Plan:
    """One planned answer. Build them with ok_game(), truncated(), rest(), text(), error()."""

    kind: str  # game | truncated | rest | text | error
    game: dict[str, str] = field(default_factory=game)
    text: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    delay: float = 0.0  # before answering at all
    chunk_delay: float = 0.0  # between streamed chunks
    chunk_size: int = 64
    cut: float = 0.5  # truncated: the share of the HTML sent before the cut
    usage: tuple[int, int] = (100, 500)  # input, output tokens reported


def ok_game(game_: dict[str, str] | None = None, **kw: Any) -> Plan:
    return Plan("game", game=game_ or game(), **kw)


def invalid_game(**kw: Any) -> Plan:
    return Plan("game", game=game("Broken", INVALID_GAME_HTML), **kw)


def truncated(game_: dict[str, str] | None = None, cut: float = 0.5, **kw: Any) -> Plan:
    """An answer cut by the length limit (finish_reason length / stop_reason max_tokens)."""
    return Plan("truncated", game=game_ or game(), cut=cut, **kw)


def rest(**kw: Any) -> Plan:
    """The rest of the last truncated answer, as a continuation would send it."""
    return Plan("rest", **kw)


def text(content: str, **kw: Any) -> Plan:
    """A plain-text answer (e.g. not JSON, with a fenced html block)."""
    return Plan("text", text=content, **kw)


def error(status: int, headers: dict[str, str] | None = None, **kw: Any) -> Plan:
    return Plan("error", status=status, headers=headers or {}, **kw)


def raw_json(body: dict[str, Any], status: int = 200, **kw: Any) -> Plan:
    """Answer with exactly this JSON body (e.g. a hand-written completion)."""
    return Plan("error", status=status, body=body, **kw)


def slow(seconds: float, then: Plan | None = None) -> Plan:
    return replace(then or ok_game(), delay=seconds)


@dataclass
class Recorded:
    """One request the fake received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]
    time: float  # time.monotonic() on arrival
    status: int = 0


def _split_html(game_: dict[str, str], cut: float) -> tuple[dict[str, str], str, str]:
    html = game_["html"]
    at = max(1, int(len(html) * cut))
    return {**game_, "html": html[:at]}, html[:at], html[at:]


class FakeLLM:
    """The fake server; start() runs uvicorn in a thread on 127.0.0.1 (a free port by default)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        default: Plan | None = None,
        default_delay: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.default = default or ok_game()
        self.default_delay = default_delay
        self.requests: list[Recorded] = []
        self._plans: deque[Plan] = deque()
        self._tail = ""  # what the last truncated answer left out
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
                Route(
                    "/openai/deployments/{deployment}/chat/completions",
                    self._openai,
                    methods=["POST"],
                ),
                Route("/v1/messages", self._anthropic, methods=["POST"]),
            ]
        )

    # --- scripting ------------------------------------------------------------------------

    def plan(self, *plans: Plan) -> None:
        """Queue answers, served one per request in order."""
        with self._lock:
            self._plans.extend(plans)

    def reset(self) -> None:
        with self._lock:
            self._plans.clear()
            self.requests.clear()
            self._tail = ""

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._plans)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeLLM:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake LLM server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- serving ----------------------------------------------------------------------------

    async def _take(self, request: Request) -> tuple[Plan, Recorded]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        record = Recorded(
            path=request.url.path,
            query=dict(request.query_params),
            headers={key.lower(): value for key, value in request.headers.items()},
            body=body,
            time=time.monotonic(),
        )
        with self._lock:
            self.requests.append(record)
            plan = (
                self._plans.popleft()
                if self._plans
                else replace(self.default, delay=self.default.delay or self.default_delay)
            )
        record.status = plan.status
        if plan.delay:
            await asyncio.sleep(plan.delay)
        return plan, record

    def _truncate_and_keep_tail(self, plan: Plan) -> tuple[dict[str, str], str, str]:
        partial, head, tail = _split_html(plan.game, plan.cut)
        with self._lock:
            self._tail = tail
        return partial, head, tail

    def _take_tail(self) -> str:
        with self._lock:
            tail, self._tail = self._tail, ""
        return tail

    # OpenAI and Azure -------------------------------------------------------------------

    async def _openai(self, request: Request) -> Response:
        plan, record = await self._take(request)
        if plan.kind == "error":
            return _openai_error(plan, record)
        finish = "stop"
        if plan.kind == "game":
            content = json.dumps(plan.game)
        elif plan.kind == "truncated":
            partial, _, _ = self._truncate_and_keep_tail(plan)
            full = json.dumps(plan.game)
            # Cut inside the html string: the JSON of the partial game without `"}`.
            content = json.dumps(partial)[:-2]
            with self._lock:
                self._tail = full[len(content) :]
            finish = "length"
        elif plan.kind == "rest":
            content = self._take_tail()
        else:
            content = plan.text
        model = record.body.get("model", "fake")
        if record.body.get("stream"):
            include_usage = bool((record.body.get("stream_options") or {}).get("include_usage"))
            return _sse(
                _openai_chunks(plan, model, content, finish, include_usage), plan.chunk_delay
            )
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ],
                "usage": _openai_usage(plan),
            }
        )

    # Anthropic -----------------------------------------------------------------------------

    async def _anthropic(self, request: Request) -> Response:
        plan, record = await self._take(request)
        if plan.kind == "error":
            return _anthropic_error(plan, record)
        body = record.body
        with_tools = bool(body.get("tools"))
        thinking = (body.get("thinking") or {}).get("type") == "enabled"
        # A model with thinking on and tool_choice auto may answer in text: this fake does.
        as_tool = with_tools and not thinking
        blocks: list[dict[str, Any]] = []
        tool_json: str | None = None
        stop = "end_turn"
        if thinking:
            blocks.append({"type": "thinking", "thinking": "Plan the game loop.", "signature": "s"})
        if plan.kind == "game":
            if as_tool:
                blocks.append(_tool_block(plan.game))
                tool_json = json.dumps(plan.game)
                stop = "tool_use"
            else:
                blocks.append({"type": "text", "text": f"```html\n{plan.game['html']}```"})
        elif plan.kind == "truncated":
            partial, head, tail = self._truncate_and_keep_tail(plan)
            stop = "max_tokens"
            if as_tool:
                blocks.append(_tool_block(partial))
                tool_json = json.dumps(partial)[:-2]
            else:
                blocks.append({"type": "text", "text": f"```html\n{head}"})
                with self._lock:
                    self._tail = tail + "\n```"
        elif plan.kind == "rest":
            blocks.append({"type": "text", "text": self._take_tail()})
        else:
            blocks.append({"type": "text", "text": plan.text})
        model = body.get("model", "fake")
        if body.get("stream"):
            return _sse(_anthropic_events(plan, model, blocks, tool_json, stop), plan.chunk_delay)
        return JSONResponse(
            {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": blocks,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": plan.usage[0], "output_tokens": plan.usage[1]},
            }
        )


def received_key(record: Recorded) -> str:
    """The API key a request carried: `api-key` (Azure), `x-api-key` or a Bearer token."""
    auth = record.headers.get("authorization", "")
    return (
        record.headers.get("api-key")
        or record.headers.get("x-api-key")
        or auth.removeprefix("Bearer ")
    )


def _error_message(plan: Plan, record: Recorded) -> str:
    if plan.status == 401:
        # Like the real APIs, quote the key back: the providers must never pass this on.
        return f"Incorrect API key provided: {received_key(record)}"
    return f"fake error {plan.status}"


def _openai_error(plan: Plan, record: Recorded) -> Response:
    body = plan.body or {
        "error": {
            "message": _error_message(plan, record),
            "type": "invalid_request_error" if plan.status < 500 else "server_error",
            "param": None,
            "code": "invalid_api_key" if plan.status == 401 else None,
        }
    }
    return JSONResponse(body, status_code=plan.status, headers=plan.headers)


def _anthropic_error(plan: Plan, record: Recorded) -> Response:
    kinds = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}
    body = plan.body or {
        "type": "error",
        "error": {
            "type": kinds.get(plan.status, "api_error"),
            "message": _error_message(plan, record),
        },
    }
    return JSONResponse(body, status_code=plan.status, headers=plan.headers)


def _openai_usage(plan: Plan) -> dict[str, int]:
    return {
        "prompt_tokens": plan.usage[0],
        "completion_tokens": plan.usage[1],
        "total_tokens": sum(plan.usage),
    }


def _tool_block(input_: dict[str, str]) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_fake", "name": "submit_game", "input": input_}


def _pieces(content: str, size: int) -> Iterator[str]:
    for start in range(0, len(content), size):
        yield content[start : start + size]


def _openai_chunks(
    plan: Plan, model: str, content: str, finish: str, include_usage: bool
) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        return json.dumps(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(content, plan.chunk_size):
        yield chunk({"content": piece})
    yield chunk({}, finish)
    if include_usage:
        yield json.dumps(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [],
                "usage": _openai_usage(plan),
            }
        )
    yield "[DONE]"


def _anthropic_events(
    plan: Plan, model: str, blocks: list[dict[str, Any]], tool_json: str | None, stop: str
) -> Iterator[str]:
    def event(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}"

    yield event(
        "message_start",
        {
            "message": {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": plan.usage[0], "output_tokens": 1},
            }
        },
    )
    for index, block in enumerate(blocks):
        if block["type"] == "tool_use":
            yield event(
                "content_block_start",
                {"index": index, "content_block": {**block, "input": {}}},
            )
            for piece in _pieces(tool_json or "", plan.chunk_size):
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield event("content_block_delta", {"index": index, "delta": delta})
        elif block["type"] == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            yield event("content_block_start", {"index": index, "content_block": start})
            delta = {"type": "thinking_delta", "thinking": block["thinking"]}
            yield event("content_block_delta", {"index": index, "delta": delta})
            delta = {"type": "signature_delta", "signature": block["signature"]}
            yield event("content_block_delta", {"index": index, "delta": delta})
        else:
            start = {"type": "text", "text": ""}
            yield event("content_block_start", {"index": index, "content_block": start})
            for piece in _pieces(block["text"], plan.chunk_size):
                delta = {"type": "text_delta", "text": piece}
                yield event("content_block_delta", {"index": index, "delta": delta})
        yield event("content_block_stop", {"index": index})
    yield event(
        "message_delta",
        {
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": plan.usage[1]},
        },
    )
    yield event("message_stop", {})


def _sse(events: Iterator[str], delay: float) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for item in events:
            line = item if item.startswith("event:") else f"data: {item}"
            yield f"{line}\n\n".encode()
            if delay:
                await asyncio.sleep(delay)

    return StreamingResponse(body(), media_type="text/event-stream")


class ProgressLog:
    """A Progress callback that records every call, for assertions."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, stage: str, info: dict[str, Any]) -> None:
        self.calls.append((stage, dict(info)))

    def stages(self) -> list[str]:
        return [stage for stage, _ in self.calls]


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a valid game for every LLM request.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    fake = FakeLLM(args.host, args.port, default_delay=args.delay)
    print(f"fake LLM on {fake.url} (OpenAI base URL {fake.openai_base_url})", flush=True)  # noqa: T201
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
