"""Django's own routes; ``/llm/...`` never reaches Django (GatewayMiddleware serves it)."""

from django.http import HttpRequest, JsonResponse
from django.urls import path


def hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"message": "hello from Django"})


urlpatterns = [
    path("django/hello", hello),
]
