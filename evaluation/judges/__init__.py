"""VLM-as-judge backends (pure: no Django).

- `openai_client`: OpenAI-compatible chat-completions over HTTP (vLLM, SGLang, Ollama, llama.cpp, hosted).
- `vqascore`: a local Hugging Face transformers VLM computing VQAScore (P("Yes"), Lin et al. 2024).
- `rubric`: VIEScore-style semantic consistency / perceptual quality prompts and parsing.
- `pairwise`: A / B / tie judging in both orders to cancel position bias.
- `chat_judge`: runs rubric / pairwise / VQAScore modes on any chat backend, with the response cache.
- `agreement`: judge–human agreement (accuracy against the human majority, Wilson interval).
- `cache`: the response-cache interface and key; `media`: data URLs and video frames;
  `verdicts`: the `Verdict` record and answer-parsing helpers.
"""
