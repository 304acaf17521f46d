"""HTML pages and their media: the arena, the leaderboard, model pages (thin: parse, call, render)."""

from __future__ import annotations

import csv
import hashlib
import mimetypes
from functools import lru_cache, wraps
from pathlib import PurePosixPath

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from arena import charts, rater_checks, selectors, services
from arena.models import Battle, Outcome, Rater
from arena.services import ArenaRefusal
from evaluation import publication
from evaluation.metrics.catalogue import metric_heading
from models_registry.generators.tasks import task_spec
from models_registry.models import Task
from models_registry.selectors import training_finished, training_progress

OUTCOME_KEYS = (
    (Outcome.MODEL_A, "A is better", "1"),
    (Outcome.MODEL_B, "B is better", "2"),
    (Outcome.TIE, "Tie", "3"),
    (Outcome.BOTH_BAD, "Both are bad", "4"),
)


def home(request: HttpRequest) -> HttpResponse:
    training = training_progress()
    seeding = bool(training) and not training_finished(training)
    return render(
        request, "home.html", {"tasks": Task.choices, "training": training, "seeding": seeding}
    )


# --- helpers -------------------------------------------------------------------------------


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.META.get("HTTP_ACCEPT", "")


RATER_COOKIE = "arena_rater"


@lru_cache(maxsize=4)
def _rater_signer(secret_key: str) -> signing.TimestampSigner:
    # Built once per key: constructing a signer per request costs more than checking a cookie.
    return signing.TimestampSigner(
        key=secret_key, fallback_keys=settings.SECRET_KEY_FALLBACKS, salt="arena.rater"
    )


def anonymous_rater_id(request: HttpRequest) -> int | None:
    """The anonymous rater id this browser carries in its signed cookie (None if none/forged).

    A signed cookie rather than the session: voting reads no session store at all.
    """
    value = request.COOKIES.get(RATER_COOKIE)
    if not value:
        return None
    try:
        rater_id = _rater_signer(settings.SECRET_KEY).unsign(
            value, max_age=settings.SESSION_COOKIE_AGE
        )
    except signing.BadSignature:
        return None
    return int(rater_id) if rater_id.isdigit() else None


def remember_rater(response: HttpResponse, rater) -> HttpResponse:
    """Give an anonymous rater's browser its signed rater cookie (logged-in users need none)."""
    if rater.user_id is None:
        response.set_cookie(
            RATER_COOKIE,
            _rater_signer(settings.SECRET_KEY).sign(str(rater.pk)),
            max_age=settings.SESSION_COOKIE_AGE,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
    return response


def request_rater(request: HttpRequest):
    return services.rater_for(user=request.user, anonymous_rater_id=anonymous_rater_id(request))


def request_rater_id(request: HttpRequest) -> int | None:
    return services.rater_id_for(user=request.user, anonymous_rater_id=anonymous_rater_id(request))


def request_ip_hash(request: HttpRequest) -> str:
    address = services.client_address(
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""),
    )
    return services.address_hash(address)


def refusal_response(
    request: HttpRequest, refusal: ArenaRefusal, *, json: bool = False
) -> HttpResponse:
    """The refusal as JSON ({"error", "message"}) or as the refusal page, with Retry-After."""
    if json or wants_json(request):
        response = JsonResponse(
            {"error": refusal.code, "message": refusal.message}, status=refusal.status
        )
    else:
        response = render(
            request,
            "arena/refusal.html",
            {"message": refusal.message, "code": refusal.code},
            status=refusal.status,
        )
    if refusal.retry_after:
        response["Retry-After"] = str(refusal.retry_after)
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF refusals in the arena's words (403), as JSON for JSON clients."""
    return refusal_response(
        request,
        ArenaRefusal(
            403,
            "csrf_failed",
            "This form is missing its security token (CSRF). Reload the page and try again.",
        ),
    )


def _task_or_404(task: str) -> str:
    if not selectors.is_valid_task(task):
        raise Http404(f"Unknown task {task!r}; use one of {', '.join(Task.values)}.")
    return task


def battle_payload(battle: Battle) -> dict:
    """Everything the browser needs before the vote, and no model identity. `size` samples
    (A, B, C, ...); a K-wise battle (size > 2) is voted by a ranking or the best sample."""
    kind = task_spec(battle.task).media
    tokens = (
        [battle.media_token_a, battle.media_token_b]
        if battle.size == 2
        else selectors.battle_media_tokens(battle=battle)
    )
    return {
        "token": battle.token,
        "task": battle.task,
        "size": battle.size,
        "prompt": {"text": battle.prompt.text, "category": battle.prompt.category},
        # Image editing: the source image both samples edit, shown above them.
        "source": (
            {"url": reverse("arena:battle-source", args=[battle.token])}
            if task_spec(battle.task).source_image
            else None
        ),
        "media_kind": str(kind),
        "media": [
            {"side": services.SIDES[k], "url": reverse("arena:battle-media", args=[media_token])}
            for k, media_token in enumerate(tokens)
        ],
        "vote_url": reverse("arena:vote", args=[battle.token]),
        "min_view_seconds": settings.ARENA_MIN_VIEW_SECONDS,
        "expires_at": battle.expires_at.isoformat(),
    }


# --- arena ---------------------------------------------------------------------------------


@require_GET
@ensure_csrf_cookie
def arena_page(request: HttpRequest, task: str) -> HttpResponse:
    """The arena: a pair by default (ARENA_KWISE_K), K samples to rank with ``?k=3`` / ``?k=4``."""
    _task_or_404(task)
    rater = request_rater(request)
    requested = request.GET.get("k", "")
    context = {
        "task": task,
        "task_label": Task(task).label,
        "outcomes": OUTCOME_KEYS,
        "k": requested,
        "max_k": settings.ARENA_KWISE_MAX_K,
    }
    try:
        battle = services.battle_create(
            task=task, rater=rater, ip_hash=request_ip_hash(request), k=requested
        )
    except ArenaRefusal as refusal:
        if refusal.code != "no_battle":
            page = refusal_response(request, refusal)
        else:
            page = render(request, "arena/arena.html", {**context, "unavailable": refusal.message})
    else:
        page = render(request, "arena/arena.html", {**context, "battle": battle_payload(battle)})
    return remember_rater(page, rater)


@require_POST
def battle_new(request: HttpRequest, task: str) -> HttpResponse:
    """POST: a new battle for this session's rater, as JSON (used by "Next battle")."""
    try:
        _task_or_404(task)
        rater = request_rater(request)
        battle = services.battle_create(
            task=task,
            rater=rater,
            ip_hash=request_ip_hash(request),
            k=request.POST.get("k") or request.GET.get("k", ""),
        )
    except Http404:
        refusal = ArenaRefusal(404, "unknown_task", "Unknown task.")
        return refusal_response(request, refusal, json=True)
    except ArenaRefusal as refusal:
        return refusal_response(request, refusal, json=True)
    return remember_rater(JsonResponse(battle_payload(battle), status=201), rater)


@require_POST
def vote(request: HttpRequest, token: str) -> HttpResponse:
    """POST outcome=model_a|model_b|tie|both_bad (a pair), or ranking=C,A,D,B (every sample,
    best first) or best=C (a K-wise battle); JSON reveal, or the HTML reveal page."""
    rater_id = request_rater_id(request)
    asked = request.POST.get("vote_kind")  # the K-wise form's submit button
    ranking = request.POST.get("ranking", "" if asked == "ranking" else None)
    best = request.POST.get("best", "" if asked == "best" else None)
    try:
        recorded = services.vote_create(
            token=token,
            rater_id=rater_id,
            outcome=request.POST.get("outcome", ""),
            ranking=ranking,
            best=best,
            ip_hash=request_ip_hash(request),
        )
    except ArenaRefusal as refusal:
        return refusal_response(request, refusal)
    reveal = services.battle_reveal(vote=recorded)
    if wants_json(request):
        return JsonResponse(reveal, status=201)
    return render(
        request,
        "arena/revealed.html",
        {
            "reveal": reveal,
            "task": recorded.task,
            "outcome_label": recorded.get_outcome_display(),
            "k": len(recorded.lineup) if recorded.kind != "pair" else "",
        },
        status=201,
    )


def _stream_sample(sample) -> StreamingHttpResponse:
    """The sample's bytes with a content type from its extension and no name-bearing header."""
    return _stream_file(sample.media)


def _stream_file(media) -> StreamingHttpResponse:
    """A stored file's bytes with a content type from its extension and no name-bearing header."""
    content_type = mimetypes.guess_type(PurePosixPath(media.name).name)[0]
    handle = media.storage.open(media.name, "rb")
    response = StreamingHttpResponse(
        iter(lambda: handle.read(64 * 1024), b""),
        content_type=content_type or "application/octet-stream",
    )
    response["Content-Length"] = str(media.storage.size(media.name))
    response["X-Content-Type-Options"] = "nosniff"
    response.close = handle.close  # closed when the server finishes the response
    return response


@require_GET
def battle_media(request: HttpRequest, media_token: str) -> HttpResponse:
    rater_id = request_rater_id(request)
    try:
        sample = services.battle_media_for(media_token=media_token, rater_id=rater_id)
    except ArenaRefusal as refusal:
        return refusal_response(request, refusal)
    response = _stream_sample(sample)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
def battle_source(request: HttpRequest, token: str) -> HttpResponse:
    """The source image of an image-edit battle (for the rater it was served to)."""
    try:
        source = services.battle_source_for(token=token, rater_id=request_rater_id(request))
    except ArenaRefusal as refusal:
        return refusal_response(request, refusal)
    response = _stream_file(source)
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --- rater hygiene: personal leaderboard, maintainers' view of flags ------------------------


@require_GET
def personal_board_page(request: HttpRequest, task: str) -> HttpResponse:
    """This browser's (or user's) own leaderboard, shrunk toward the consensus."""
    _task_or_404(task)
    rater_id = request_rater_id(request)
    rater = Rater.objects.filter(pk=rater_id, kind="human").first() if rater_id else None
    board = rater_checks.personal_board(rater=rater, task=task)
    return render(
        request,
        "arena/personal_board.html",
        {"task": task, "task_label": Task(task).label, "board": board},
    )


def _staff_only(request: HttpRequest) -> HttpResponse | None:
    if request.user.is_authenticated and request.user.is_staff:
        return None
    return refusal_response(
        request,
        ArenaRefusal(403, "staff_only", "Only staff maintainers can see and review rater flags."),
    )


@require_GET
def rater_flags_page(request: HttpRequest) -> HttpResponse:
    """Staff: raters the outlier test flagged or has not decided on, and reviewed ones."""
    refused = _staff_only(request)
    if refused is not None:
        return refused
    context = {
        "flags": selectors.rater_flags(),
        "alpha": settings.ARENA_RATER_CHECK_ALPHA,
        "beta": settings.ARENA_RATER_CHECK_BETA,
        "alternative": settings.ARENA_RATER_CHECK_ALTERNATIVE,
    }
    return render(request, "arena/rater_flags.html", context)


@require_POST
def rater_flag_review(request: HttpRequest, flag_id: int) -> HttpResponse:
    """Staff: POST action=confirm|clear|reset on one rater's flag, then back to the list."""
    refused = _staff_only(request)
    if refused is not None:
        return refused
    try:
        rater_checks.review_rater_flag(
            flag_id=flag_id, action=request.POST.get("action", ""), user=request.user
        )
    except rater_checks.ReviewError as exc:
        return refusal_response(request, ArenaRefusal(400, "bad_action", str(exc)))
    except LookupError:
        return refusal_response(request, ArenaRefusal(404, "unknown_flag", "No such rater flag."))
    if wants_json(request):
        return JsonResponse({"ok": True})
    return HttpResponseRedirect(reverse("arena:rater-flags"))


# --- leaderboard ---------------------------------------------------------------------------


def cached_for_anonymous(view):
    """Serve an anonymous visitor's leaderboard (page, JSON, CSV) from the cache.

    Keyed by the leaderboard's fingerprint (newest snapshot, models, metric results), so a
    cached copy is never stale; logged-in users, who may see private models, get a fresh one.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, task: str) -> HttpResponse:
        ttl = settings.ARENA_LEADERBOARD_CACHE_SECONDS
        if ttl <= 0 or request.user.is_authenticated:
            return view(request, task)
        parts = (
            view.__name__,
            task,
            request.GET.get("category", "").strip(),
            request.GET.get("view", "").strip(),
            selectors.leaderboard_fingerprint(task=task),
            settings.ARENA_PROVISIONAL_VOTES,
        )
        key = "arena:leaderboard:" + hashlib.sha256(repr(parts).encode()).hexdigest()
        cached = cache.get(key)
        if cached is None:
            response = view(request, task)
            if response.status_code != 200:
                return response
            cached = (response.content, dict(response.headers))
            cache.set(key, cached, ttl)
        content, headers = cached
        return HttpResponse(content, headers=headers)

    return wrapper


def _board(request: HttpRequest, task: str) -> selectors.Leaderboard:
    _task_or_404(task)
    category = request.GET.get("category", "").strip()
    view = request.GET.get("view", "").strip()
    return selectors.leaderboard(task=task, category=category, user=request.user, view=view)


def _view_urls(request: HttpRequest, board: selectors.Leaderboard) -> dict[str, str]:
    """Links of the two orderings (the no-JS fallback of the style-control toggle)."""
    query = request.GET.copy()
    query.pop("view", None)
    plain = query.urlencode()
    query["view"] = "style"
    return {"plain": f"?{plain}" if plain else "?", "style": f"?{query.urlencode()}"}


@require_GET
@cached_for_anonymous
def leaderboard_page(request: HttpRequest, task: str) -> HttpResponse:
    board = _board(request, task)
    names = {row["model"]: row.get("display_name") or row["model"] for row in board.rows}
    history = selectors.rating_history(task=task, category=board.category, user=request.user)
    rated = [row for row in board.rows if not row["no_votes"]]
    shown = [row["model"] for row in rated[:10]]
    series = {
        names.get(slug, slug): [snap["ratings"].get(slug) for snap in history] for slug in shown
    }
    context = {
        "task": task,
        "task_label": Task(task).label,
        "tasks": Task.choices,
        "board": board,
        "categories": selectors.categories(task=task),
        "metric_columns": [(m, metric_heading(m)) for m in board.metrics],
        "provisional_votes": settings.ARENA_PROVISIONAL_VOTES,
        "ci_svg": mark_safe(charts.ci_plot(rated)),
        "judge_label": ", ".join(board.judges) or "judge",
        "view_urls": _view_urls(request, board),
        "show_style": bool(board.style_coefficients),
        "show_robustness": bool(board.robustness and board.robustness.get("status") == "ok"),
        "heatmap_svg": mark_safe(
            charts.win_rate_heatmap(
                [names.get(s, s) for s in board.models],
                board.win_rate_matrix,
                board.count_matrix or None,
            )
            if board.win_rate_matrix
            else ""
        ),
        "history_svg": mark_safe(
            charts.rating_over_time([snap["computed_at"] for snap in history], series)
        ),
        "show_generation": any(row.get("generation") for row in board.rows),
        "show_provenance": any(row.get("provenance") for row in board.rows),
        "quality_cost_svg": mark_safe(
            charts.quality_cost_plot(
                board.quality_cost["points"],
                quality_label=board.quality_cost["label"],
                direction=board.quality_cost["direction"],
            )
            if board.quality_cost
            else ""
        ),
    }
    return render(request, "arena/leaderboard.html", context)


def _export_rows(board: selectors.Leaderboard) -> list[dict]:
    rows = []
    for row in board.rows:
        out = {key: row.get(key) for key in selectors.LEADERBOARD_COLUMNS}
        out["metrics"] = row.get("metrics", {})
        out["judge"] = row.get("judge")
        out["style"] = row.get("style")
        out["robustness"] = row.get("robustness")
        out["generation"] = row.get("generation")
        out["provenance"] = row.get("provenance")
        rows.append(out)
    return rows


@require_GET
@cached_for_anonymous
def leaderboard_json(request: HttpRequest, task: str) -> JsonResponse:
    board = _board(request, task)
    snapshot = board.snapshot
    return JsonResponse(
        {
            "task": task,
            "category": board.category,
            "computed_at": snapshot.computed_at.isoformat() if snapshot else None,
            "n_votes": snapshot.n_votes if snapshot else 0,
            "provisional_below_votes": settings.ARENA_PROVISIONAL_VOTES,
            "rows": _export_rows(board),
            "metrics": board.metrics,
            "models": board.models,
            "win_rate_matrix": board.win_rate_matrix,
            "count_matrix": board.count_matrix,
            "flags": board.flags,
            "view": board.view,
            "style": board.style,
            "style_coefficients": board.style_coefficients,
            "ties": board.ties,
            "robustness": board.robustness,
            "quality_cost": board.quality_cost,
        }
    )


@require_GET
@cached_for_anonymous
def leaderboard_csv(request: HttpRequest, task: str) -> HttpResponse:
    board = _board(request, task)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    suffix = f"-{board.category}" if board.category else ""
    response["Content-Disposition"] = f'attachment; filename="leaderboard-{task}{suffix}.csv"'
    writer = csv.writer(response)
    judge_keys = ("rating", "lower", "upper", "votes")
    writer.writerow(
        [
            *selectors.LEADERBOARD_COLUMNS,
            *board.metrics,
            *(f"judge_{key}" for key in judge_keys),
            *(f"style_{key}" for key in selectors.STYLE_KEYS),
            "robustness",
            *(f"generation_{key}" for key in selectors.GENERATION_KEYS),
            *(f"provenance_{key}" for key in selectors.PROVENANCE_KEYS),
            "computed_at",
        ]
    )
    computed = board.snapshot.computed_at.isoformat() if board.snapshot else ""
    for row in _export_rows(board):
        cells = [row[key] for key in selectors.LEADERBOARD_COLUMNS]
        for metric in board.metrics:
            cell = row["metrics"].get(metric)
            cells.append(
                cell["value"] if cell and cell["status"] == "ok" else (cell or {}).get("status")
            )
        judge = row["judge"] or {}
        cells.extend(judge.get(key) for key in judge_keys)
        style = row["style"] or {}
        cells.extend(style.get(key) for key in selectors.STYLE_KEYS)
        cells.append((row["robustness"] or {}).get("display"))
        generation = row["generation"] or {}
        cells.extend(generation.get(key) for key in selectors.GENERATION_KEYS)
        provenance = row["provenance"] or {}
        cells.extend(provenance.get(key) for key in selectors.PROVENANCE_KEYS)
        writer.writerow([*cells, computed])
    return response


# --- model pages ---------------------------------------------------------------------------


def _model_or_404(request: HttpRequest, slug: str):
    model = selectors.model_for_page(slug=slug, user=request.user)
    if model is None:
        raise Http404("No such model.")
    return model


@require_GET
def model_page(request: HttpRequest, slug: str) -> HttpResponse:
    model = _model_or_404(request, slug)
    sweeps = selectors.steps_sweep_series(model=model)
    versions = selectors.model_versions(model=model)
    context = {
        "model": model,
        "versions": versions,
        "generation": selectors.version_generation(versions=versions),
        "steps_sweeps": [
            (
                metric,
                series,
                mark_safe(charts.steps_sweep_plot(series, quality_label=metric_heading(metric))),
            )
            for metric, series in sweeps.items()
        ],
        "gallery": selectors.sample_gallery(model=model),
        "metric_history": selectors.metric_history(model=model),
        "head_to_head": selectors.head_to_head(model=model, user=request.user),
    }
    return render(request, "arena/model.html", context)


@require_GET
def model_sample_media(request: HttpRequest, slug: str, public_id) -> HttpResponse:
    model = _model_or_404(request, slug)
    sample = selectors.gallery_sample(model=model, public_id=public_id)
    if sample is None:
        raise Http404("No such sample.")
    return _published_response(request, sample)


# --- provenance: sample pages, their signed media and manifest, /verify ---------------------


def _published_response(request: HttpRequest, sample, cache: str = "public") -> HttpResponse:
    """The sample's signed, watermarked rendition (made on first request)."""
    try:
        provenance = publication.sample_publish(sample=sample)
    except ImproperlyConfigured as exc:
        return refusal_response(request, ArenaRefusal(503, "provenance_unconfigured", str(exc)))
    response = _stream_file(provenance.media)
    response["Cache-Control"] = (
        "public, max-age=86400" if cache == "public" else "private, no-store"
    )
    return response


def _sample_or_404(request: HttpRequest, public_id):
    sample = selectors.sample_for_page(public_id=public_id, user=request.user)
    if sample is None:
        raise Http404("No such sample.")
    return sample


def manifest_payload(sample, provenance) -> dict:
    """A published sample's provenance as JSON: its manifest, watermark id and links."""
    return {
        "sample": str(sample.public_id),
        "model": sample.version.model.slug,
        "version": sample.version.tag,
        "page_url": reverse("arena:sample", args=[sample.public_id]),
        "media_url": reverse("arena:sample-media", args=[sample.public_id]),
        "sha256": provenance.sha256,
        "watermark_id": f"{provenance.watermark_id:016x}" if provenance.watermarked else "",
        "signed": provenance.signed,
        "demo_signer": provenance.demo_signer,
        "manifest": provenance.manifest,
    }


def _render_sample_page(request: HttpRequest, sample, links: dict[str, str]) -> HttpResponse:
    try:
        provenance = publication.sample_publish(sample=sample)
    except ImproperlyConfigured as exc:
        return refusal_response(request, ArenaRefusal(503, "provenance_unconfigured", str(exc)))
    return render(
        request,
        "arena/sample.html",
        {
            "sample": sample,
            "provenance": provenance,
            "payload": manifest_payload(sample, provenance),
            **links,
        },
    )


@require_GET
def sample_page(request: HttpRequest, public_id) -> HttpResponse:
    sample = _sample_or_404(request, public_id)
    return _render_sample_page(
        request,
        sample,
        {
            "media_url": reverse("arena:sample-media", args=[sample.public_id]),
            "source_url": reverse("arena:sample-source", args=[sample.public_id]),
            "manifest_url": reverse("arena:sample-manifest", args=[sample.public_id]),
        },
    )


@require_GET
def battle_sample(request: HttpRequest, token: str, side: str, part: str = "page"):
    """After the vote, for its rater only: a revealed battle sample's page, its published media
    and its manifest, through the battle's token. A live battle sample has no public page (its
    public id finds nothing), so the voter's link cannot unmask it for anyone else."""
    try:
        sample = services.voted_sample_for(
            token=token, side=side, rater_id=request_rater_id(request)
        )
    except ArenaRefusal as refusal:
        return refusal_response(request, refusal, json=part == "manifest")
    if part == "media":
        return _published_response(request, sample, cache="private")
    if part == "source":
        if not sample.prompt.source_image:
            raise Http404("this sample edits no source image")
        return _stream_file(sample.prompt.source_image)
    if part == "manifest":
        try:
            provenance = publication.sample_publish(sample=sample)
        except ImproperlyConfigured as exc:
            return refusal_response(
                request, ArenaRefusal(503, "provenance_unconfigured", str(exc)), json=True
            )
        return JsonResponse(manifest_payload(sample, provenance))
    response = _render_sample_page(
        request,
        sample,
        {
            "media_url": reverse("arena:battle-sample-media", args=[token, side]),
            "source_url": reverse("arena:battle-sample-source", args=[token, side]),
            "manifest_url": reverse("arena:battle-sample-manifest", args=[token, side]),
        },
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def sample_media(request: HttpRequest, public_id) -> HttpResponse:
    return _published_response(request, _sample_or_404(request, public_id))


@require_GET
def sample_source(request: HttpRequest, public_id) -> HttpResponse:
    """The source image an image-edit sample edited (404 for samples of other tasks)."""
    sample = _sample_or_404(request, public_id)
    if not sample.prompt.source_image:
        raise Http404("this sample edits no source image")
    return _stream_file(sample.prompt.source_image)


@require_GET
def sample_manifest(request: HttpRequest, public_id) -> HttpResponse:
    sample = _sample_or_404(request, public_id)
    try:
        provenance = publication.sample_publish(sample=sample)
    except ImproperlyConfigured as exc:
        return refusal_response(
            request, ArenaRefusal(503, "provenance_unconfigured", str(exc)), json=True
        )
    return JsonResponse(manifest_payload(sample, provenance))


def verification_payload(request: HttpRequest, result) -> dict:
    """What /verify answers: manifest, watermark verdict and the sample page (when the user may
    see the sample's model)."""
    sample = None
    if result.sample is not None:
        sample = selectors.sample_for_page(public_id=result.sample.public_id, user=request.user)
    return {
        "image": result.image,
        "manifest": result.manifest.as_dict(),
        "watermark": result.watermark,
        "sample": None
        if sample is None
        else {
            "public_id": str(sample.public_id),
            "model": sample.version.model.slug,
            "model_name": sample.version.model.display_name,
            "version": sample.version.tag,
            "prompt": sample.prompt.text,
            "seed": sample.seed,
            "matched_by": result.matched_by,
            "page_url": reverse("arena:sample", args=[sample.public_id]),
            "manifest_url": reverse("arena:sample-manifest", args=[sample.public_id]),
        },
    }


def verify_upload(request: HttpRequest) -> tuple[dict | None, publication.VerifyRefused | None]:
    """(payload, None) for a readable upload in field "image", else (None, the refusal)."""
    upload = request.FILES.get("image")
    if upload is None:
        return None, publication.VerifyRefused(
            "image", "image: attach an image file (PNG, JPEG or WebP) in the field 'image'"
        )
    if upload.size > settings.VERIFY_MAX_BYTES:
        return None, publication.VerifyRefused(
            "image",
            f"image: {upload.size} bytes is over the limit of {settings.VERIFY_MAX_BYTES} bytes",
            status=413,
        )
    try:
        result = publication.verify_image(data=upload.read())
    except publication.VerifyRefused as refused:
        return None, refused
    return verification_payload(request, result), None


@require_http_methods(["GET", "POST"])
def verify_page(request: HttpRequest) -> HttpResponse:
    """GET: the upload form; POST (multipart, field "image"): the verdict, as HTML or JSON."""
    if request.method == "GET":
        return render(request, "arena/verify.html", {"max_bytes": settings.VERIFY_MAX_BYTES})
    try:
        services.verify_rate_check(ip_hash=request_ip_hash(request))
    except ArenaRefusal as refusal:
        return refusal_response(request, refusal)
    payload, refused = verify_upload(request)
    if refused is not None:
        if wants_json(request):
            return JsonResponse(
                {"error": "invalid_image", "field": refused.field, "message": refused.message},
                status=refused.status,
            )
        return render(
            request,
            "arena/verify.html",
            {"error": refused.message, "max_bytes": settings.VERIFY_MAX_BYTES},
            status=refused.status,
        )
    if wants_json(request):
        return JsonResponse(payload)
    return render(
        request, "arena/verify.html", {"result": payload, "max_bytes": settings.VERIFY_MAX_BYTES}
    )
