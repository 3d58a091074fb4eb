/*-------------------------------------------------------------------------
 *
 * render.c
 *		scoring.render(): message templates filled from a JSON context.
 *
 * The language is a small, logic-less subset of Mustache:
 *
 *		{{path.to.value}}		the value at that path (an array index is a
 *								number: {{items.0.name}}); nothing when absent
 *		{{#list}}...{{/list}}	the inside once per element of an array, with
 *								the element as the first place names are
 *								looked up; once for any other true value
 *		{{^list}}...{{/list}}	the inside when the value is absent, false,
 *								null or an empty array
 *		{{.}}					the current element itself
 *
 * A template is parsed into a tree first, so that a malformed one fails
 * with the position of the problem before anything is produced.  Nothing
 * but the context can be reached: no SQL runs, no file is read.  Depth and
 * output size are bounded, so no template can exhaust the server.
 *
 * IDENTIFICATION
 *		src/render.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "scoring.h"

PG_FUNCTION_INFO_V1(scoring_render);

/* Sections may nest this deep */
#define MAX_DEPTH		16
/* A rendered message may not grow beyond this */
#define MAX_OUTPUT		(10 * 1024 * 1024)

typedef enum TemplateNodeKind
{
	NODE_TEXT,
	NODE_VALUE,
	NODE_SECTION,
	NODE_INVERTED
} TemplateNodeKind;

/* A piece of a parsed template */
typedef struct TemplateNode
{
	TemplateNodeKind kind;
	char	   *text;			/* literal text, or the path of a tag */
	int			len;
	struct TemplateNode *children;		/* the inside of a section */
	struct TemplateNode *next;
} TemplateNode;

/* The parser's state */
typedef struct Parser
{
	const char *src;
	int			len;
	int			pos;
} Parser;

/* Complains about a malformed template at a position */
static void
malformed(const Parser *p, int at, const char *what)
{
	/* a position in characters, as a person counts them, not in bytes */
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("malformed template: %s", what),
			 errdetail("At character %d.", pg_mbstrlen_with_len(p->src, at) + 1)));
}

/* Appends a node to a list being built */
static TemplateNode *
append(TemplateNode ***tail, TemplateNodeKind kind, const char *text, int len)
{
	TemplateNode	   *n = palloc0(sizeof(TemplateNode));

	n->kind = kind;
	n->text = pnstrdup(text, len);
	n->len = len;
	**tail = n;
	*tail = &n->next;
	return n;
}

/* Whether a tag name is a path: letters, digits, _ - and dots, or "." */
static bool
valid_path(const char *s, int len)
{
	int			i;

	if (len == 1 && s[0] == '.')
		return true;
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (!(isalnum((unsigned char) c) || c == '_' || c == '-' || c == '.' ||
			  (unsigned char) c >= 0x80) ||
			(c == '.' && s[i + 1] == '.'))
			return false;
	}
	return true;
}

/*
 * Parses nodes until the end of the template or the closing tag of the
 * section named close (NULL at the top level).
 */
static TemplateNode *
parse(Parser *p, const char *close, int close_len, int depth, int opened_at)
{
	TemplateNode	   *head = NULL;
	TemplateNode	  **tail = &head;

	if (depth > MAX_DEPTH)
		malformed(p, opened_at, psprintf("sections nest deeper than %d", MAX_DEPTH));
	check_stack_depth();

	while (p->pos < p->len)
	{
		const char *open = strstr(p->src + p->pos, "{{");
		int			start,
					name_start,
					name_len,
					end;
		char		sigil;
		const char *closing;

		if (open == NULL || open - p->src >= p->len)
		{
			append(&tail, NODE_TEXT, p->src + p->pos, p->len - p->pos);
			p->pos = p->len;
			break;
		}
		start = open - p->src;
		if (start > p->pos)
			append(&tail, NODE_TEXT, p->src + p->pos, start - p->pos);

		closing = strstr(open + 2, "}}");
		if (closing == NULL)
			malformed(p, start, "a tag is not closed with }}");
		end = closing - p->src + 2;

		/* the tag's sigil and name, without surrounding spaces */
		name_start = start + 2;
		while (name_start < end - 2 && p->src[name_start] == ' ')
			name_start++;
		sigil = p->src[name_start];
		if (sigil == '#' || sigil == '^' || sigil == '/')
			name_start++;
		else
			sigil = 0;
		while (name_start < end - 2 && p->src[name_start] == ' ')
			name_start++;
		name_len = end - 2 - name_start;
		while (name_len > 0 && p->src[name_start + name_len - 1] == ' ')
			name_len--;
		if (!valid_path(p->src + name_start, name_len))
			malformed(p, start, psprintf("\"%.*s\" is not a valid name",
										 end - start, p->src + start));
		p->pos = end;

		if (sigil == '/')
		{
			if (close == NULL || name_len != close_len ||
				strncmp(p->src + name_start, close, close_len) != 0)
				malformed(p, start, psprintf("{{/%.*s}} closes no open section",
											 name_len, p->src + name_start));
			return head;
		}
		if (sigil == 0)
			append(&tail, NODE_VALUE, p->src + name_start, name_len);
		else
		{
			TemplateNode	   *n = append(&tail, sigil == '#' ? NODE_SECTION : NODE_INVERTED,
								   p->src + name_start, name_len);

			n->children = parse(p, n->text, n->len, depth + 1, start);
		}
	}
	if (close != NULL)
		malformed(p, opened_at, psprintf("section \"%.*s\" is never closed",
										 close_len, close));
	return head;
}

/* The scopes in which names are looked up, innermost first */
typedef struct Scope
{
	JsonbValue *value;
	struct Scope *outer;
} Scope;

/* Looks up one step of a path in a container value */
static bool
step(JsonbValue *from, const char *key, int len, JsonbValue *out)
{
	JsonbContainer *c;

	if (from->type != jbvBinary)
		return false;
	c = from->val.binary.data;
	if (JsonContainerIsObject(c))
		return getKeyJsonValueFromContainer(c, key, len, out) != NULL;
	if (JsonContainerIsArray(c))
	{
		char	   *num = pnstrdup(key, len);
		char	   *endp;
		long		i = strtol(num, &endp, 10);
		JsonbValue *v;

		if (*endp != '\0' || i < 0 || i > PG_INT32_MAX)
			return false;
		v = getIthJsonbValueFromContainer(c, (uint32) i);
		if (v == NULL)
			return false;
		*out = *v;
		return true;
	}
	return false;
}

/*
 * Resolves a dotted path: its first name in the innermost scope that has
 * it, the rest from there.
 */
static bool
resolve(Scope *scope, const char *path, JsonbValue *out)
{
	const char *dot = strchr(path, '.');
	int			first = dot ? dot - path : strlen(path);

	if (strcmp(path, ".") == 0)
	{
		*out = *scope->value;
		return true;
	}
	for (; scope != NULL; scope = scope->outer)
	{
		if (step(scope->value, path, first, out))
		{
			while (dot != NULL)
			{
				const char *key = dot + 1;
				JsonbValue	next;

				dot = strchr(key, '.');
				if (!step(out, key, dot ? dot - key : strlen(key), &next))
					return false;
				*out = next;
			}
			return true;
		}
	}
	return false;
}

/* Whether a value makes a section render */
static bool
truthy(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return false;
		case jbvBool:
			return v->val.boolean;
		case jbvBinary:
			return !JsonContainerIsArray(v->val.binary.data) ||
				JsonContainerSize(v->val.binary.data) > 0;
		default:
			return true;
	}
}

/* Appends a value as text: strings as they are, other JSON as JSON */
static void
append_value(StringInfo out, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			break;
		case jbvString:
			appendBinaryStringInfo(out, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			appendStringInfoString(out,
								   DatumGetCString(DirectFunctionCall1(numeric_out,
																	   NumericGetDatum(v->val.numeric))));
			break;
		case jbvBool:
			appendStringInfoString(out, v->val.boolean ? "true" : "false");
			break;
		default:
			(void) JsonbToCString(out, v->val.binary.data, v->val.binary.len);
			break;
	}
}

static void render_nodes(TemplateNode *node, Scope *scope, StringInfo out);

/* Renders a section: once per element of an array, else once */
static void
render_section(TemplateNode *node, JsonbValue *v, Scope *scope, StringInfo out)
{
	Scope		inner;

	if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data))
	{
		JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
		JsonbValue	elem;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			inner.value = &elem;
			inner.outer = scope;
			render_nodes(node->children, &inner, out);
		}
		return;
	}
	inner.value = v;
	inner.outer = scope;
	render_nodes(node->children, &inner, out);
}

/* Renders a list of nodes in a scope */
static void
render_nodes(TemplateNode *node, Scope *scope, StringInfo out)
{
	check_stack_depth();
	CHECK_FOR_INTERRUPTS();

	for (; node != NULL; node = node->next)
	{
		JsonbValue	v;
		bool		found;

		if (node->kind == NODE_TEXT)
			appendBinaryStringInfo(out, node->text, node->len);
		else
		{
			found = resolve(scope, node->text, &v);
			if (node->kind == NODE_VALUE && found)
				append_value(out, &v);
			else if (node->kind == NODE_SECTION && found && truthy(&v))
				render_section(node, &v, scope, out);
			else if (node->kind == NODE_INVERTED && !(found && truthy(&v)))
				render_nodes(node->children, scope, out);
		}
		if (out->len > MAX_OUTPUT)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("rendered message exceeds %d bytes", MAX_OUTPUT)));
	}
}

/* Parses a template, complaining when it is malformed */
static TemplateNode *
parse_template(const char *src, int len)
{
	Parser		p = {src, len, 0};

	return parse(&p, NULL, 0, 0, 0);
}

/*
 * scoring.render(template text, context jsonb): the template filled from
 * the context.
 */
Datum
scoring_render(PG_FUNCTION_ARGS)
{
	text	   *tmpl = PG_GETARG_TEXT_PP(0);
	Jsonb	   *context = PG_GETARG_JSONB_P(1);
	char	   *src = text_to_cstring(tmpl);
	TemplateNode	   *tree;
	JsonbValue	root;
	Scope		scope;
	StringInfoData out;

	tree = parse_template(src, strlen(src));

	/* a scalar context is that scalar, not an array holding it */
	if (JB_ROOT_IS_SCALAR(context))
		(void) JsonbExtractScalar(&context->root, &root);
	else
	{
		root.type = jbvBinary;
		root.val.binary.data = &context->root;
		root.val.binary.len = VARSIZE(context) - VARHDRSZ;
	}
	scope.value = &root;
	scope.outer = NULL;

	initStringInfo(&out);
	render_nodes(tree, &scope, &out);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

PG_FUNCTION_INFO_V1(scoring_template_valid);

/*
 * scoring.template_valid(text): true for a well-formed template, the
 * error naming the problem otherwise; used when a sequence is stored.
 */
Datum
scoring_template_valid(PG_FUNCTION_ARGS)
{
	char	   *src = text_to_cstring(PG_GETARG_TEXT_PP(0));

	(void) parse_template(src, strlen(src));
	PG_RETURN_BOOL(true);
}
