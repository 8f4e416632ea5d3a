"""Signing in and out (django-allauth's views, in the portal's layout): the sign-in page says
where mail goes when no mail server is set up."""

from allauth.account.views import LoginView, LogoutView

from tenancy.mail import on_console


class Login(LoginView):
    template_name = "account/login.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "mail_on_console": on_console()}


login = Login.as_view()
logout = LogoutView.as_view()
