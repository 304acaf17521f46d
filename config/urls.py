from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from arena import api as arena_api
from config.health import healthz
from evaluation import api as evaluation_api
from models_registry import urls as registry_urls
from pipeline import api as pipeline_api

# One API namespace ("registry"), each resource served by the app that owns it.
api_v1_patterns = (
    [
        *registry_urls.urlpatterns,
        path(
            "versions/<int:pk>/samples/",
            evaluation_api.VersionSamplesView.as_view(),
            name="version-samples",
        ),
        path(
            "versions/<int:pk>/metrics/",
            evaluation_api.VersionMetricsView.as_view(),
            name="version-metrics",
        ),
        path(
            "versions/<int:pk>/stages/",
            pipeline_api.VersionStagesView.as_view(),
            name="version-stages",
        ),
        path("verify", arena_api.VerifyView.as_view(), name="verify"),
    ],
    registry_urls.app_name,
)

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include(api_v1_patterns)),
    path("", include("arena.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
