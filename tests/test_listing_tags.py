"""The list-table tags: a table around the rows when there are any, the empty message (escaped)
when there are none, header cells with numeric columns marked."""

from django.template import Context, Template


def render(source: str, **context) -> str:
    return Template("{% load listing %}" + source).render(Context(context))


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


def test_headings_are_escaped_and_translated_literals_work():
    html = render('{% colheads heading _("Kind") %}', heading="<script>")
    assert html == ('<thead><tr><th scope="col">&lt;script&gt;</th><th scope="col">Kind</th>'
                    "</tr></thead>")
