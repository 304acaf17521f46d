from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = "Pipeline"

    def ready(self) -> None:
        # The registry announces uploads and approvals; the pipeline reacts (no upward import).
        from pipeline import receivers  # noqa: F401
