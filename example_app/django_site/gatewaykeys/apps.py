from django.apps import AppConfig


class GatewayKeysConfig(AppConfig):
    name = "example_app.django_site.gatewaykeys"
    label = "gatewaykeys"
    verbose_name = "Gateway keys"
    default_auto_field = "django.db.models.BigAutoField"
