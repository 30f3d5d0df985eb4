from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import factor_views, views

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
    path("accounts/login/verify/", factor_views.login_verify, name="login_verify"),
    path("accounts/login/passkey/", factor_views.login_passkey, name="login_passkey"),
    path("accounts/passkeys/options/", factor_views.passkey_options, name="passkey_options"),
    path("accounts/confirm/", factor_views.recheck, name="recheck"),
    path("accounts/security/", factor_views.security, name="security"),
    path("accounts/security/authenticator/", factor_views.totp_setup, name="totp_setup"),
    path("accounts/security/authenticator/remove/", factor_views.totp_remove, name="totp_remove"),
    path("accounts/security/passkeys/add/", factor_views.passkey_add, name="passkey_add"),
    path("accounts/security/passkeys/<int:passkey_id>/remove/", factor_views.passkey_remove, name="passkey_remove"),
    path("accounts/security/recovery-codes/", factor_views.recovery_codes_new, name="recovery_codes_new"),
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
