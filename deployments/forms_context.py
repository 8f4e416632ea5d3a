"""Template context shared by the pages that show a deployment's panel."""

from workers.forms import InvokeForm


def invoke_context(deployment, form: InvokeForm | None = None) -> dict:
    if form is None:
        form = InvokeForm(functions=deployment.functions)
    return {"deployment": deployment, "invoke_form": form}
