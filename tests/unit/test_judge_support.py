"""Shared test helpers for the judge tests (no tests here).

- `OpenAICompatibleServer`: a small OpenAI-compatible chat-completions server on 127.0.0.1 (ephemeral
  port) in a thread — the one allowed stand-in for a third-party service (a hosted or vLLM judge).
  It counts attempts, records requests and the peak number of requests in flight.
- `build_tiny_llava`: a tiny randomly initialised LLaVA (CLIP vision tower + Llama text model) with a
  word-level tokenizer and a CLIP image processor, saved like a real Hugging Face model directory.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

Reply = tuple[int, dict[str, str], bytes]


def completion(
    text: str,
    *,
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
    top_logprobs: dict[str, float] | None = None,
) -> Reply:
    """A 200 chat-completions answer in OpenAI's schema."""
    choice: dict = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
    }
    if top_logprobs is not None:
        choice["logprobs"] = {
            "content": [
                {
                    "token": next(iter(top_logprobs)),
                    "logprob": next(iter(top_logprobs.values())),
                    "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top_logprobs.items()],
                }
            ]
        }
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "tiny-judge",
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def request_images(request: dict) -> list[bytes]:
    """The decoded bytes of every base64 data-URL image in a chat request, in order."""
    found = []
    for message in request["messages"]:
        for part in message["content"] if isinstance(message["content"], list) else []:
            if part.get("type") == "image_url":
                url = part["image_url"]["url"]
                assert url.startswith("data:image/png;base64,"), url[:40]
                found.append(base64.b64decode(url.split(",", 1)[1], validate=True))
    return found


def request_text(request: dict) -> str:
    return "\n".join(
        part["text"]
        for message in request["messages"]
        for part in (message["content"] if isinstance(message["content"], list) else [])
        if part.get("type") == "text"
    )


def mean_color(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64).mean(
        axis=(0, 1)
    )


def is_red(png: bytes) -> bool:
    r, g, b = mean_color(png)
    return r > g + 50 and r > b + 50


def solid_png(color: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


class OpenAICompatibleServer:
    """POST /v1/chat/completions answered by `respond(request_json, attempt_number) -> Reply`."""

    def __init__(self, respond: Callable[[dict, int], Reply], *, delay_s: float = 0.0) -> None:
        self.respond = respond
        self.delay_s = delay_s
        self.attempts = 0
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                with server._lock:
                    server.attempts += 1
                    attempt = server.attempts
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    request = json.loads(self.rfile.read(length))
                    with server._lock:
                        server.requests.append(request)
                        server.headers.append(dict(self.headers))
                    if self.path != "/v1/chat/completions":
                        status, headers, body = 404, {}, b"not found"
                    else:
                        if server.delay_s:
                            time.sleep(server.delay_s)
                        status, headers, body = server.respond(request, attempt)
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> OpenAICompatibleServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


# --- a tiny random VLM, saved like a real one ---------------------------------------------------
TINY_WORDS = [
    "[PAD]", "[UNK]", "<image>", "Yes", "No", "Does", "this", "figure", "show", '"', "?",
    "Please", "answer", "yes", "or", "no", ".", "USER", "ASSISTANT", ":", "a", "red", "blue",
    "square", "circle", "on", "the", "left",
]  # fmt: skip
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | upper }}: "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
    "{% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT: {% endif %}"
)


def build_tiny_llava(directory: Path, *, seed: int = 0) -> Path:
    """Save a random tiny LLaVA (config.json, model.safetensors, tokenizer, processor) to `directory`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    vocab = {word: index for index, word in enumerate(TINY_WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        extra_special_tokens={"image_token": "<image>"},
    )
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=TINY_CHAT_TEMPLATE,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        text_config=LlamaConfig(
            vocab_size=len(TINY_WORDS),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=256,
            pad_token_id=0,
            eos_token_id=16,
            bos_token_id=17,
        ),
        image_token_id=vocab["<image>"],
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    # Random init is near-uniform; widen the logits so P(Yes) differs visibly between inputs.
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
