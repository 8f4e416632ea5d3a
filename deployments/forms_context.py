"""Template context shared by the pages that show a deployment's panel."""

from workers.forms import InvokeForm


def invoke_context(deployment, form: InvokeForm | None = None) -> dict:
    if form is None:
        form = InvokeForm(functions=deployment.functions)
    context = {"deployment": deployment, "invoke_form": form}
    if deployment.invoke_secret_required:
        from .generator import invoke_secret

        context["invoke_secret"] = invoke_secret(deployment)
    return context
