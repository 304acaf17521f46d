"""Builders for arena tests: real models, versions, prompts and sample files in storage."""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image

from arena.models import Battle
from evaluation.models import Prompt, PromptSet, Sample
from evaluation.pools import SHOWCASE_SEED_BASE, pool_for_seed, screen_lookalikes
from models_registry.models import GenerativeModel, ModelVersion, Task, VersionStatus

CATEGORIES = ("animals", "scenes")


def configure_arena(settings, tmp_path, **overrides):
    """Arena settings for a test: media under `tmp_path`, the pool read fresh, no ratings
    refresh, rate limits out of the way (1,000 a minute); `overrides` (ARENA_* names) on top."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ARENA_POOL_CACHE_SECONDS = 0
    settings.ARENA_REFRESH_DEBOUNCE_SECONDS = 0
    for action in ("VOTES", "BATTLES"):
        for who in ("RATER", "IP"):
            setattr(settings, f"ARENA_{action}_PER_MINUTE_PER_{who}", 1000)
    for name, value in overrides.items():
        setattr(settings, name, value)
    return settings


def png_bytes(colour: tuple[int, int, int], size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Arena:
    task: str
    owner: object
    prompt_set: PromptSet
    prompts: list[Prompt] = field(default_factory=list)
    models: list[GenerativeModel] = field(default_factory=list)
    versions: list[ModelVersion] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    def identities(self) -> list[str]:
        """Every string that would reveal which model made a sample."""
        out = []
        for model in self.models:
            out += [model.slug, model.display_name]
        for version in self.versions:
            out += [version.tag, f"{version.model.slug}@{version.tag}"]
        for sample in self.samples:
            out += [str(sample.public_id), sample.media.name, sample.sha256]
        return out


def add_model(
    arena: Arena,
    *,
    name: str | None = None,
    visibility: str = "public",
    approved: bool = True,
    status: str = VersionStatus.PUBLISHED,
    owner=None,
    seeds: int = 1,
    showcase: int = 0,
) -> GenerativeModel:
    """A model with `seeds` battle-pool samples per prompt and `showcase` public ones (seeds
    from SHOWCASE_SEED_BASE, screened as the generate stage screens them)."""
    suffix = secrets.token_hex(3)
    name = name or f"Zeta Gen {suffix}"
    model = GenerativeModel.objects.create(
        slug=f"zeta-gen-{suffix}",
        display_name=name,
        task=arena.task,
        paradigm="diffusion",
        license="MIT",
        owner=owner or arena.owner,
        visibility=visibility,
    )
    version = ModelVersion.objects.create(
        model=model, tag=f"v-{suffix}", status=status, arena_approved=approved
    )
    arena.models.append(model)
    arena.versions.append(version)
    kind = "video" if arena.task == Task.TEXT_TO_VIDEO else "image"
    ext = "mp4" if kind == "video" else "png"
    all_seeds = [*range(seeds), *(SHOWCASE_SEED_BASE + k for k in range(showcase))]
    for p_index, prompt in enumerate(arena.prompts):
        for seed in all_seeds:
            colour = ((37 * len(arena.models)) % 256, (61 * p_index) % 256, (97 * seed) % 256)
            data = png_bytes(colour)
            sample = Sample(
                version=version,
                prompt=prompt,
                seed=seed,
                pool=pool_for_seed(seed),
                media_kind=kind,
                width=16,
                height=16,
                sha256=secrets.token_hex(32),
            )
            # The stored file name carries the model's slug, so a leak through paths is caught.
            sample.media.save(
                f"{model.slug}-{prompt.pk}-{seed}.{ext}", ContentFile(data), save=False
            )
            sample.save()
            arena.samples.append(sample)
    if showcase:
        screen_lookalikes(version_id=version.pk)
    return model


def make_arena(
    *,
    task: str = Task.TEXT_TO_IMAGE,
    n_models: int = 3,
    n_prompts: int = 2,
    seeds: int = 1,
    showcase: int = 0,
) -> Arena:
    owner = get_user_model().objects.create_user(f"owner-{secrets.token_hex(3)}", password="pw")
    prompt_set = PromptSet.objects.create(
        slug=f"bench-{secrets.token_hex(3)}", name="Bench", task=task
    )
    arena = Arena(task=task, owner=owner, prompt_set=prompt_set)
    for k in range(n_prompts):
        arena.prompts.append(
            Prompt.objects.create(
                prompt_set=prompt_set,
                text=f"a red fox number {k} in the snow",
                category=CATEGORIES[k % len(CATEGORIES)],
                position=k,
            )
        )
    for _ in range(n_models):
        add_model(arena, seeds=seeds, showcase=showcase)
    return arena


def age_battle(battle: Battle, seconds: float) -> Battle:
    """Pretend the battle was served `seconds` ago (the rater has been looking at it)."""
    Battle.objects.filter(pk=battle.pk).update(
        served_at=battle.served_at - timedelta(seconds=seconds),
        expires_at=battle.expires_at - timedelta(seconds=seconds),
    )
    battle.refresh_from_db()
    return battle


def cast_votes(arena: Arena, n: int, strength: dict[int, int] | None = None) -> None:
    """Serve and vote n battles through the services; the model with higher strength wins."""
    from arena import services

    strength = strength or {m.pk: k for k, m in enumerate(arena.models)}
    rng = np.random.default_rng(0)
    for k in range(n):
        # A rater never meets a sample they have seen: small test pools need many raters.
        rater = services.rater_for(user=None, anonymous_rater_id=None)
        battle = services.battle_create(task=arena.task, rater=rater, ip_hash="", rng=rng)
        age_battle(battle, 5)
        a = battle.sample_a.version.model_id
        b = battle.sample_b.version.model_id
        outcome = "model_a" if strength.get(a, 0) > strength.get(b, 0) else "model_b"
        if k % 7 == 3:
            outcome = "tie"
        services.vote_create(token=battle.token, rater_id=rater.id, outcome=outcome, ip_hash="")


def judge_vote(judge, sample_a, sample_b, outcome: str, *, token: str):
    """A judge's Battle and Vote on (sample_a, sample_b), as arena.judging stores them."""
    from django.utils import timezone

    from arena.models import Vote

    now = timezone.now()
    battle = Battle.objects.create(
        token=token,
        task=sample_a.version.model.task,
        prompt=sample_a.prompt,
        sample_a=sample_a,
        sample_b=sample_b,
        served_to=judge,
        served_at=now,
        expires_at=now + timedelta(seconds=1),
    )
    return Vote.objects.create(
        battle=battle,
        rater=judge,
        rater_kind="judge",
        outcome=outcome,
        task=battle.task,
        model_a=sample_a.version.model,
        model_b=sample_b.version.model,
    )
