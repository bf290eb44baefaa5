from . import policies


def roles(request):
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {
        "can_edit": policies.can_edit(user),
        "can_review": policies.can_review(user),
        "can_import": policies.can_import(user),
        "can_export": policies.can_export(user),
        "can_generate": policies.can_generate(user),
        "can_train": policies.can_train(user),
    }
