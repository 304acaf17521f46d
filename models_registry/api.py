"""REST submission API (``/api/v1/``): thin views over registry services and selectors.

Visibility: lists and reads go through selectors (a private model is invisible to everyone but
its owner and staff); writes only find the caller's own objects, so anyone else gets 404.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_registry import selectors, services
from models_registry.serializers import (
    ErrorSerializer,
    GenerativeModelSerializer,
    GenerativeModelUpdateSerializer,
    ModelVersionSerializer,
    UploadFinalizeSerializer,
    UploadSerializer,
    UploadStartSerializer,
    VersionCreateSerializer,
    VersionUpdateSerializer,
)

CONTENT_RANGE_RE = re.compile(r"^bytes (\d{1,20})-(\d{1,20})/(\d{1,20})$")
ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; `detail` says what."),
    401: OpenApiResponse(ErrorSerializer, description="No or invalid API token."),
    404: OpenApiResponse(ErrorSerializer, description="Not found (or not yours)."),
}
UPLOAD_ERRORS = {
    **ERRORS,
    409: OpenApiResponse(
        ErrorSerializer, description="Chunk out of order/overlapping; `offset` is where to resume."
    ),
    413: OpenApiResponse(ErrorSerializer, description="Over a size limit or the user's quota."),
    416: OpenApiResponse(ErrorSerializer, description="Content-Range outside the upload."),
}


class RegistryAPIView(APIView):
    # Turns user-caused service errors into JSON error responses (no docstring: it would
    # become every operation's description in the OpenAPI schema).

    def handle_exception(self, exc):
        if isinstance(exc, services.RegistryError):
            return Response({"detail": exc.message, **exc.extra}, status=exc.status_code)
        if isinstance(exc, DjangoValidationError):
            exc = ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
            )
        return super().handle_exception(exc)


class RegistryListView(RegistryAPIView, generics.ListAPIView):
    pass


@extend_schema_view(get=extend_schema(summary="List models you can see (public and your own)"))
class ModelListCreateView(RegistryListView):
    serializer_class = GenerativeModelSerializer

    def get_queryset(self):
        return selectors.listed_models(user=self.request.user).prefetch_related("versions")

    @extend_schema(
        summary="Register a model (you become its owner)",
        request=GenerativeModelSerializer,
        responses={201: GenerativeModelSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = GenerativeModelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        model = services.model_create(owner=request.user, **serializer.validated_data)
        return Response(GenerativeModelSerializer(model).data, status=status.HTTP_201_CREATED)


class ModelDetailView(RegistryAPIView):
    @extend_schema(summary="Retrieve a model", responses={200: GenerativeModelSerializer, **ERRORS})
    def get(self, request: Request, slug: str) -> Response:
        model = get_object_or_404(selectors.visible_models(user=request.user), slug=slug)
        return Response(GenerativeModelSerializer(model).data)

    @extend_schema(
        summary="Update your model",
        request=GenerativeModelUpdateSerializer,
        responses={200: GenerativeModelSerializer, **ERRORS},
    )
    def patch(self, request: Request, slug: str) -> Response:
        model = get_object_or_404(selectors.owned_models(user=request.user), slug=slug)
        serializer = GenerativeModelUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        model = services.model_update(model=model, data=dict(serializer.validated_data))
        return Response(GenerativeModelSerializer(model).data)


@extend_schema_view(get=extend_schema(summary="List a model's versions"))
class VersionListCreateView(RegistryListView):
    serializer_class = ModelVersionSerializer

    def get_queryset(self):
        model = get_object_or_404(
            selectors.visible_models(user=self.request.user), slug=self.kwargs["slug"]
        )
        return model.versions.prefetch_related("stages").order_by("created_at")

    @extend_schema(
        summary="Create a version of your model",
        request=VersionCreateSerializer,
        responses={201: ModelVersionSerializer, **UPLOAD_ERRORS},
    )
    def post(self, request: Request, slug: str) -> Response:
        model = get_object_or_404(selectors.owned_models(user=request.user), slug=slug)
        serializer = VersionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.version_create(model=model, **serializer.validated_data)
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class VersionDetailView(RegistryAPIView):
    @extend_schema(
        summary="Retrieve a version (status, reason, checkpoint, stages)",
        responses={200: ModelVersionSerializer, **ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        version = get_object_or_404(selectors.visible_versions(user=request.user), pk=pk)
        return Response(ModelVersionSerializer(version).data)

    @extend_schema(
        summary="Update your version's tag or generator settings",
        request=VersionUpdateSerializer,
        responses={200: ModelVersionSerializer, **UPLOAD_ERRORS},
    )
    def patch(self, request: Request, pk: int) -> Response:
        version = get_object_or_404(selectors.owned_versions(user=request.user), pk=pk)
        serializer = VersionUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        version = services.version_update(version=version, **serializer.validated_data)
        return Response(ModelVersionSerializer(version).data)


class VersionChildListView(RegistryListView):
    """Base of a list that hangs off one version the caller may see (samples, metrics, stages)."""

    def version(self):
        return get_object_or_404(
            selectors.visible_versions(user=self.request.user), pk=self.kwargs["pk"]
        )


class UploadStartView(RegistryAPIView):
    @extend_schema(
        summary="Start a resumable checkpoint upload (.zip/.tar/.tar.gz)",
        request=UploadStartSerializer,
        responses={201: UploadSerializer, **UPLOAD_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        version = get_object_or_404(selectors.owned_versions(user=request.user), pk=pk)
        serializer = UploadStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = services.upload_start(
            version=version, user=request.user, **serializer.validated_data
        )
        response = Response(UploadSerializer(upload).data, status=status.HTTP_201_CREATED)
        response["Location"] = reverse("registry:upload-detail", kwargs={"pk": upload.pk})
        return response


class RawBodyParser(BaseParser):
    """Declares the chunk body type; the view streams ``request.stream`` itself."""

    media_type = "application/octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):  # pragma: no cover
        raise AssertionError("chunk bodies are streamed, never parsed into memory")


class UploadDetailView(RegistryAPIView):
    parser_classes = [RawBodyParser]

    def upload(self, request: Request, pk: int):
        return get_object_or_404(selectors.owned_uploads(user=request.user), pk=pk)

    @extend_schema(
        summary="Upload status: the offset to resume from",
        responses={200: UploadSerializer, **ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(UploadSerializer(self.upload(request, pk)).data)

    @extend_schema(
        summary="Send one chunk (Content-Range: bytes START-END/TOTAL)",
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter(
                "Content-Range",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="bytes START-END/TOTAL (END inclusive); START must be next_offset",
            )
        ],
        responses={200: UploadSerializer, **UPLOAD_ERRORS},
    )
    def put(self, request: Request, pk: int) -> Response:
        upload = self.upload(request, pk)
        match = CONTENT_RANGE_RE.match(request.headers.get("Content-Range", "").strip())
        if match is None:
            raise services.RegistryError(
                "Content-Range header must be 'bytes START-END/TOTAL' (END inclusive)",
                offset=upload.received,
            )
        start, end, total = (int(group) for group in match.groups())
        length = request.headers.get("Content-Length")
        upload = services.upload_write_chunk(
            upload=upload,
            start=start,
            end=end,
            total=total,
            stream=request.stream or _EMPTY,
            content_length=int(length) if length and length.isdigit() else None,
        )
        return Response(UploadSerializer(upload).data)

    @extend_schema(
        summary="Abort an open upload and delete its bytes", responses={204: None, **UPLOAD_ERRORS}
    )
    def delete(self, request: Request, pk: int) -> Response:
        services.upload_abort(upload=self.upload(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class _EmptyStream:
    def read(self, size: int = -1) -> bytes:
        return b""


_EMPTY = _EmptyStream()


class UploadFinalizeView(RegistryAPIView):
    @extend_schema(
        summary="Finalize: check sha256 and queue validation",
        request=UploadFinalizeSerializer,
        responses={202: ModelVersionSerializer, **UPLOAD_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        upload = get_object_or_404(selectors.owned_uploads(user=request.user), pk=pk)
        serializer = UploadFinalizeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.upload_finalize(upload=upload, **serializer.validated_data)
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)
