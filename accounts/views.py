from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import ApiKey


@login_required
def home(request: HttpRequest) -> HttpResponse:
    keys = ApiKey.objects.filter(user=request.user)
    return render(request, "accounts/home.html", {"keys": keys})
