"""`stage_run`: the one way a stage is started, advanced and ended (done, failed or skipped)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from models_registry.models import GenerativeModel, ModelVersion
from pipeline.models import Stage, StageState, VersionStage
from pipeline.stages import stage_run

pytestmark = pytest.mark.django_db


class AuthorError(Exception):
    """Stands for a domain error whose message is meant for the author (e.g. GenerationFailed)."""


class NothingToDo(Exception):
    """Stands for a 'not configured' error that skips a stage (e.g. JudgeNotConfigured)."""


@pytest.fixture
def version() -> ModelVersion:
    owner = get_user_model().objects.create_user("author", password="x")
    model = GenerativeModel.objects.create(
        slug="m", display_name="M", task="text-to-image", paradigm="flow", owner=owner
    )
    return ModelVersion.objects.create(model=model, tag="v1")


def row(version, stage=Stage.METRICS) -> VersionStage:
    return VersionStage.objects.get(version=version, stage=stage)


def test_a_block_that_returns_is_done_with_its_progress(version):
    with stage_run(version_id=version.pk, stage=Stage.METRICS, total=5) as run:
        assert row(version).state == StageState.RUNNING and row(version).total == 5
        run.advance(2)
        run.advance()
        assert row(version).done == 3
        run.progress(4, total=6)
        assert (row(version).done, row(version).total) == (4, 6)
    stage = row(version)
    assert stage.state == StageState.DONE and stage.done == 6  # done means all of it
    assert stage.started_at and stage.finished_at and stage.reason == ""


def test_an_exception_fails_the_stage_and_propagates(version):
    with pytest.raises(ZeroDivisionError):
        with stage_run(version_id=version.pk, stage=Stage.METRICS):
            1 / 0  # noqa: B018
    assert row(version).state == StageState.FAILED
    assert row(version).reason == "ZeroDivisionError: division by zero"


def test_a_readable_exception_is_recorded_as_its_message(version):
    with pytest.raises(AuthorError):
        with stage_run(version_id=version.pk, stage=Stage.GENERATE, readable=(AuthorError,)):
            raise AuthorError("the checkpoint generates text-to-video but the model is ...")
    stage = row(version, Stage.GENERATE)
    assert stage.reason == "the checkpoint generates text-to-video but the model is ..."


def test_a_skip_exception_skips_without_raising_and_the_reason_is_kept(version):
    with stage_run(version_id=version.pk, stage=Stage.JUDGE, skip_on=(NothingToDo,)) as run:
        raise NothingToDo("set JUDGE_API_BASE_URL or JUDGE_LOCAL_VLM_PATH")
    assert run.skipped_reason == "set JUDGE_API_BASE_URL or JUDGE_LOCAL_VLM_PATH"
    stage = row(version, Stage.JUDGE)
    assert stage.state == StageState.SKIPPED and "JUDGE_LOCAL_VLM_PATH" in stage.reason


def test_fail_without_raising_and_leave_running(version):
    with stage_run(version_id=version.pk, stage=Stage.VALIDATE) as run:
        run.fail("sha256 mismatch")
    assert (row(version, Stage.VALIDATE).state, row(version, Stage.VALIDATE).reason) == (
        StageState.FAILED,
        "sha256 mismatch",
    )
    with stage_run(version_id=version.pk, stage=Stage.GENERATE, total=8) as run:
        run.progress(3)
        run.leave_running()  # another chunk finishes the stage
    assert row(version, Stage.GENERATE).state == StageState.RUNNING


def test_a_rerun_starts_from_a_clean_reason_but_keeps_the_first_start(version):
    with pytest.raises(RuntimeError):
        with stage_run(version_id=version.pk, stage=Stage.METRICS):
            raise RuntimeError("boom")
    first = row(version).started_at
    with stage_run(version_id=version.pk, stage=Stage.METRICS, total=1):
        assert row(version).reason == "" and row(version).finished_at is None
    assert row(version).state == StageState.DONE and row(version).started_at == first


def test_the_registry_announces_approval_and_the_pipeline_publishes(version, settings):
    """The registry imports no pipeline code: its signal reaches the pipeline's receiver."""
    from models_registry.models import VersionStatus, Visibility
    from models_registry.services import version_approve_for_arena
    from pipeline.stages import stage_wait, stages_pending

    settings.ARENA_AUTO_APPROVE = False
    version.model.visibility = Visibility.PUBLIC
    version.model.save()
    version.status = VersionStatus.EVALUATING
    version.save()
    stages_pending(version_id=version.pk, stages=[Stage.ARENA])
    stage_wait(version_id=version.pk, stage=Stage.ARENA, reason="awaiting maintainer approval")
    approver = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    approved = version_approve_for_arena(version=version, approver=approver)
    assert approved.status == VersionStatus.PUBLISHED
    assert row(version, Stage.ARENA).state == StageState.DONE
