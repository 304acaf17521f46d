"""REST: verify an image's provenance (``POST /api/v1/verify``, multipart field ``image``)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiRequest, extend_schema
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arena import services
from arena.services import ArenaRefusal
from arena.views import request_ip_hash, verify_upload


class VerifyView(APIView):
    """The C2PA manifest (validated, signer, claims), the watermark verdict (payload, bit
    accuracy, threshold) and the matching sample page of an uploaded PNG / JPEG / WebP."""

    parser_classes = [MultiPartParser]
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Verify an image's C2PA manifest and watermark",
        request=OpenApiRequest(
            {
                "multipart/form-data": {
                    "type": "object",
                    "properties": {"image": {"type": "string", "format": "binary"}},
                }
            }
        ),
        responses={
            200: OpenApiTypes.OBJECT,
            400: OpenApiTypes.OBJECT,
            413: OpenApiTypes.OBJECT,
            429: OpenApiTypes.OBJECT,
        },
    )
    def post(self, request: Request) -> Response:
        try:
            services.verify_rate_check(ip_hash=request_ip_hash(request))
        except ArenaRefusal as refusal:
            return Response(
                {"error": refusal.code, "message": refusal.message},
                status=refusal.status,
                headers={"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None,
            )
        payload, refused = verify_upload(request)
        if refused is not None:
            return Response({refused.field: [refused.message]}, status=refused.status)
        return Response(payload)
