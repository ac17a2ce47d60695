from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def explore(request):
    query = request.GET.get("q", "").strip()
    return render(request, "catalog/explore.html", {"query": query, "models": []})
