from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.home, name="home"),
    path("keys/", views.key_list, name="keys"),
    path("keys/new/", views.key_new, name="key_new"),
    path("keys/<int:key_id>/rename/", views.key_rename_view, name="key_rename"),
    path("keys/<int:key_id>/revoke/", views.key_revoke_view, name="key_revoke"),
    path("keys/<int:key_id>/limits/", views.key_limits_view, name="key_limits"),
    path("activity/", views.activity, name="activity"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    # POST only (Django's LogoutView answers GET with 405).
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/password/change/", views.password_change, name="password_change"),
    path("accounts/password/change/done/", views.password_change_done, name="password_change_done"),
    path("accounts/password/reset/", views.password_reset, name="password_reset"),
    path("accounts/password/reset/sent/", views.password_reset_done, name="password_reset_done"),
    path("accounts/password/reset/<uidb64>/<token>/", views.password_reset_confirm, name="password_reset_confirm"),
    path("accounts/password/reset/done/", views.password_reset_complete, name="password_reset_complete"),
]
