"""The pieces every page uses, written once: the list table and a form's fields.

``{% listtable rows empty=_("Nothing yet.") class="queue" %}…{% endlisttable %}`` renders the
table (scrollable on a narrow screen) around its body when ``rows`` has any, else the muted
empty message. With ``rows as row``, what follows ``{% eachrow %}`` is one row's cells, rendered
in a ``<tr>`` for each row with ``row`` set (the ``<tbody>`` is the tag's).
``{% colheads _("Kind") _("Revision") numeric="2" %}`` renders a header row of column headings;
``numeric`` lists (from 1) the columns that hold figures, right-aligned.
``{% formfields form exclude="mode" %}`` renders the form's errors and its visible fields, in the
form's order, each as a labelled field group; ``only="a,b"`` renders just those fields, in that
order, without the form's errors."""

from __future__ import annotations

from django import template
from django.template.base import FilterExpression
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

register = template.Library()


def _split(parser, token) -> tuple[list[FilterExpression], dict[str, FilterExpression]]:
    args, kwargs = [], {}
    for bit in token.split_contents()[1:]:
        name, eq, value = bit.partition("=")
        if eq and name.isidentifier():
            kwargs[name] = parser.compile_filter(value)
        else:
            args.append(parser.compile_filter(bit))
    return args, kwargs


class ListTableNode(template.Node):
    def __init__(self, rows: FilterExpression, name: str | None,
                 options: dict[str, FilterExpression], head, row):
        self.rows, self.name, self.options, self.head, self.row = rows, name, options, head, row

    def render(self, context) -> str:
        options = {name: value.resolve(context) for name, value in self.options.items()}
        rows = self.rows.resolve(context)
        if not rows:
            return format_html('<p class="muted">{}</p>', options.get("empty", ""))
        classes = " ".join(filter(None, ["list", options.get("class", "")]))
        inner = self.head.render(context)
        if self.row is not None:
            with context.push():
                cells = []
                for row in rows:
                    context[self.name] = row
                    cells.append(format_html("<tr>{}</tr>", self.row.render(context)))
            inner = format_html("{}<tbody>{}</tbody>", inner, mark_safe("".join(cells)))
        return format_html('<div class="table-wrap"><table class="{}">{}</table></div>',
                           classes, inner)


@register.tag
def listtable(parser, token):
    args, options = _split(parser, token)
    name = None
    if len(args) == 3 and args[1].token == "as":
        name = args[2].token
    elif len(args) != 1:
        raise template.TemplateSyntaxError(
            "listtable takes the rows (optionally 'as' a name), then empty=… and class=…")
    head = parser.parse(("eachrow", "endlisttable"))
    row = None
    if parser.next_token().contents == "eachrow":
        if name is None:
            raise template.TemplateSyntaxError("eachrow needs 'listtable rows as name'")
        row = parser.parse(("endlisttable",))
        parser.delete_first_token()
    return ListTableNode(args[0], name, options, head, row)


class ColHeadsNode(template.Node):
    def __init__(self, headings: list[FilterExpression], options: dict[str, FilterExpression]):
        self.headings, self.options = headings, options

    def render(self, context) -> str:
        numeric = str(self.options["numeric"].resolve(context)) if "numeric" in self.options else ""
        figures = {int(n) for n in numeric.split(",") if n.strip()}
        cells = format_html_join(
            "", '<th scope="col"{}>{}</th>',
            ((format_html(' class="{}"', "num") if i in figures else "", heading.resolve(context))
             for i, heading in enumerate(self.headings, start=1)),
        )
        return format_html("<thead><tr>{}</tr></thead>", cells)


@register.tag
def colheads(parser, token):
    headings, options = _split(parser, token)
    return ColHeadsNode(headings, options)


@register.inclusion_tag("partials/form_fields.html")
def formfields(form, exclude: str = "", only: str = ""):
    if only:  # a group of fields inside a larger form, whose errors the page shows once
        return {"fields": [form[name.strip()] for name in only.split(",")]}
    skipped = {name.strip() for name in exclude.split(",")}
    return {"form": form,
            "fields": [field for field in form.visible_fields() if field.name not in skipped]}
