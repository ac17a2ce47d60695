from django.conf import settings


def site(request):
    return {
        "site_name": "Modelplace",
        "public_url": settings.PUBLIC_URL,
    }
