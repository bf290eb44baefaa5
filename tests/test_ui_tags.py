"""The list-table tags: a table around the rows when there are any, the empty message (escaped)
when there are none, header cells with numeric columns marked."""

from django.template import Context, Template


def render(source: str, **context) -> str:
    return Template("{% load ui %}" + source).render(Context(context))


TABLE = ('{% listtable rows empty=message class="queue" %}'
         '{% colheads "SKU" "Rows" numeric="2" %}<tbody>{% for r in rows %}<tr><td>{{ r }}</td>'
         '</tr>{% endfor %}</tbody>{% endlisttable %}')


def test_rows_get_the_scrollable_list_table_with_its_headings():
    html = render(TABLE, rows=["<b>KET-1</b>"], message="None")
    assert html == (
        '<div class="table-wrap"><table class="list queue"><thead><tr><th scope="col">SKU</th>'
        '<th scope="col" class="num">Rows</th></tr></thead><tbody><tr><td>&lt;b&gt;KET-1&lt;/b&gt;'
        "</td></tr></tbody></table></div>"
    )


def test_no_rows_gets_the_empty_message_escaped_and_no_table():
    html = render(TABLE, rows=[], message="No <i>drafts</i> yet.")
    assert html == '<p class="muted">No &lt;i&gt;drafts&lt;/i&gt; yet.</p>'


def test_rows_as_a_name_render_one_escaped_row_each_and_the_name_goes_out_of_scope():
    html = render('{% listtable rows as r empty="None" %}{% colheads "SKU" %}{% eachrow %}'
                  "<td>{{ r }}</td>{% endlisttable %}[{{ r }}]", rows=["A-1", "<b>B</b>"])
    assert html == (
        '<div class="table-wrap"><table class="list"><thead><tr><th scope="col">SKU</th></tr>'
        "</thead><tbody><tr><td>A-1</td></tr><tr><td>&lt;b&gt;B&lt;/b&gt;</td></tr></tbody>"
        "</table></div>[]"
    )
    assert render('{% listtable rows as r empty="None" %}{% eachrow %}<td>{{ r }}</td>'
                  "{% endlisttable %}", rows=[]) == '<p class="muted">None</p>'


def test_eachrow_without_a_row_name_is_a_template_error():
    import pytest
    from django.template import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError, match="eachrow needs"):
        render("{% listtable rows %}{% eachrow %}<td></td>{% endlisttable %}", rows=[1])


def test_headings_are_escaped_and_translated_literals_work():
    html = render('{% colheads heading _("Kind") %}', heading="<script>")
    assert html == ('<thead><tr><th scope="col">&lt;script&gt;</th><th scope="col">Kind</th>'
                    "</tr></thead>")


def test_formfields_renders_errors_then_each_visible_field_in_order_less_the_excluded():
    from django import forms

    class Form(forms.Form):
        name = forms.CharField(label="Name")
        secret = forms.CharField(widget=forms.HiddenInput)
        mode = forms.CharField(label="Mode")

        def clean(self):
            raise forms.ValidationError("Bad <input>.")

    form = Form(data={"name": "x", "secret": "s", "mode": "m"})
    form.is_valid()
    html = render('{% formfields form exclude="mode" %}', form=form)
    assert '<div class="form-errors" role="alert">' in html and "Bad &lt;input&gt;." in html
    assert 'name="name"' in html and 'name="mode"' not in html and 'name="secret"' not in html
    assert html.count('<div class="field">') == 1
