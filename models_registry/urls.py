"""Registry API routes, mounted at /api/v1/ by config/urls.py."""

from django.urls import path

from models_registry import api

app_name = "registry"
urlpatterns = [
    path("models/", api.ModelListCreateView.as_view(), name="model-list"),
    path("models/<slug:slug>/", api.ModelDetailView.as_view(), name="model-detail"),
    path(
        "models/<slug:slug>/versions/",
        api.VersionListCreateView.as_view(),
        name="model-versions",
    ),
    path("versions/<int:pk>/", api.VersionDetailView.as_view(), name="version-detail"),
    path("versions/<int:pk>/uploads/", api.UploadStartView.as_view(), name="upload-start"),
    path("uploads/<int:pk>/", api.UploadDetailView.as_view(), name="upload-detail"),
    path("uploads/<int:pk>/finalize/", api.UploadFinalizeView.as_view(), name="upload-finalize"),
]
