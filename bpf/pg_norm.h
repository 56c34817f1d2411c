/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The statement normaliser: one tokenizer shared by bpf/pg.bpf.c, which
 * runs it over every statement to compute its fingerprint, and
 * user/pg/pg_normalize.c, which runs it once per new fingerprint to build the
 * normalised text. Sharing the code is what makes them agree.
 *
 * One pass, one byte at a time, constant state, no lookahead:
 *  - whitespace and comments (-- to end of line, slash-star to star-slash,
 *    not nested) separate tokens and are dropped;
 *  - literals become the placeholder "?": numbers (with a sign where the
 *    minus cannot be binary), 'strings' ('' escapes), E'strings' (backslash
 *    escapes too), B'', X'', N'' strings, $tag$dollar quotes$tag$, $1
 *    parameters, and TRUE, FALSE, NULL unless after IS or NOT; a "?" in the
 *    input is a placeholder too, so normalising normalised text is a no-op;
 *  - inside IN (...) and ARRAY[...], ", ?" after a placeholder is dropped,
 *    so lists of any length collapse to one placeholder;
 *  - every other token (words case-folded, "quoted identifiers", operator
 *    runs, punctuation) is hashed as it is.
 * Standard strings follow standard_conforming_strings = on, PostgreSQL's
 * default: a backslash in '...' is an ordinary character.
 *
 * The fingerprint mixes the FNV-1a hash of each emitted token in order, so
 * it ignores whitespace, comments, keyword case and literal values. The
 * command (SELECT, ...) comes from the first token.
 *
 * No includes: callers provide __u8/__u32/__u64. A user of the tokens
 * defines ES_PG_NORM_EMIT(n, kind, start, end, ws) before including this
 * file; it is called for every emitted token with the byte range it came
 * from and whether whitespace or a comment preceded it.
 */
#ifndef ERPSCOPE_BPF_PG_NORM_H
#define ERPSCOPE_BPF_PG_NORM_H

#ifndef ES_PG_NORM_EMIT
#define ES_PG_NORM_EMIT(n, kind, start, end, ws) \
	do {                                        \
	} while (0)
#endif

#ifndef ES_PG_NORM_INLINE
#define ES_PG_NORM_INLINE static inline __attribute__((always_inline))
#endif

#define ES_PG_FNV_BASIS 0xcbf29ce484222325ULL
#define ES_PG_FNV_PRIME 0x100000001b3ULL
#define ES_PG_MIX_MUL 0x9e3779b97f4a7c15ULL
#define ES_PG_FNV1(c) ((ES_PG_FNV_BASIS ^ (__u64)(c)) * ES_PG_FNV_PRIME)
#define ES_PG_TOK_PH ES_PG_FNV1('?')
#define ES_PG_TOK_COMMA ES_PG_FNV1(',')
#define ES_PG_TAG_MAX 16 /* dollar-quote tag bytes compared; a power of two */

/* Token kinds given to ES_PG_NORM_EMIT. */
enum {
	ES_PG_TK_WORD = 1, /* keyword or identifier */
	ES_PG_TK_QIDENT,   /* "quoted identifier" */
	ES_PG_TK_OP,       /* run of operator characters */
	ES_PG_TK_PUNCT,    /* ( ) , ; [ ] . : and the like */
	ES_PG_TK_PH,       /* a literal, shown as ? */
};

enum {
	ES_PG_S_NONE = 0,
	ES_PG_S_IDENT,
	ES_PG_S_NUM,
	ES_PG_S_STR,
	ES_PG_S_STR_Q, /* quote seen in a string: end, or '' */
	ES_PG_S_ESTR,
	ES_PG_S_ESTR_BS,
	ES_PG_S_ESTR_Q,
	ES_PG_S_QID,
	ES_PG_S_QID_Q,
	ES_PG_S_LCOMMENT,
	ES_PG_S_BCOMMENT,
	ES_PG_S_BCOMMENT_STAR,
	ES_PG_S_DOLLAR, /* $ at a token start: $1, $$, $tag$ or a lone $ */
	ES_PG_S_DTAG,
	ES_PG_S_DQ,     /* inside a dollar quote */
	ES_PG_S_DQ_END, /* matching the closing tag */
	ES_PG_S_OP,
};

/* Character classes. */
enum {
	ES_PG_C_PUNCT = 0,
	ES_PG_C_SPACE,
	ES_PG_C_ID, /* letters, _, bytes >= 0x80 */
	ES_PG_C_DIGIT,
	ES_PG_C_OP,
	ES_PG_C_QUOTE,
	ES_PG_C_DQUOTE,
	ES_PG_C_DOLLAR,
	ES_PG_C_QMARK,
};

static const __u8 es_pg_cls[256] = {
	[' '] = ES_PG_C_SPACE,	    ['\t'] = ES_PG_C_SPACE,	 ['\n'] = ES_PG_C_SPACE,
	['\r'] = ES_PG_C_SPACE,	    ['\f'] = ES_PG_C_SPACE,	 ['\v'] = ES_PG_C_SPACE,
	['a' ... 'z'] = ES_PG_C_ID, ['A' ... 'Z'] = ES_PG_C_ID,	 ['_'] = ES_PG_C_ID,
	[0x80 ... 0xff] = ES_PG_C_ID, ['0' ... '9'] = ES_PG_C_DIGIT, ['+'] = ES_PG_C_OP,
	['-'] = ES_PG_C_OP,	    ['*'] = ES_PG_C_OP,		 ['/'] = ES_PG_C_OP,
	['<'] = ES_PG_C_OP,	    ['>'] = ES_PG_C_OP,		 ['='] = ES_PG_C_OP,
	['~'] = ES_PG_C_OP,	    ['!'] = ES_PG_C_OP,		 ['@'] = ES_PG_C_OP,
	['#'] = ES_PG_C_OP,	    ['%'] = ES_PG_C_OP,		 ['^'] = ES_PG_C_OP,
	['&'] = ES_PG_C_OP,	    ['|'] = ES_PG_C_OP,		 ['`'] = ES_PG_C_OP,
	['\''] = ES_PG_C_QUOTE,	    ['"'] = ES_PG_C_DQUOTE,	 ['$'] = ES_PG_C_DOLLAR,
	['?'] = ES_PG_C_QMARK,
};

/* Keyword context left by the last token. */
enum { ES_PG_KW_NONE = 0, ES_PG_KW_IS, ES_PG_KW_NOT, ES_PG_KW_IN, ES_PG_KW_ARRAY };

/* The first 8 bytes of a case-folded word, big-endian: "in" is 0x696e. */
#define ES_PG_KWV_SELECT 0x73656c656374ULL
#define ES_PG_KWV_INSERT 0x696e73657274ULL
#define ES_PG_KWV_UPDATE 0x757064617465ULL
#define ES_PG_KWV_DELETE 0x64656c657465ULL
#define ES_PG_KWV_BEGIN 0x626567696eULL
#define ES_PG_KWV_START 0x7374617274ULL
#define ES_PG_KWV_COMMIT 0x636f6d6d6974ULL
#define ES_PG_KWV_END 0x656e64ULL
#define ES_PG_KWV_ROLLBACK 0x726f6c6c6261636bULL
#define ES_PG_KWV_ABORT 0x61626f7274ULL
#define ES_PG_KWV_TRUE 0x74727565ULL
#define ES_PG_KWV_FALSE 0x66616c7365ULL
#define ES_PG_KWV_NULL 0x6e756c6cULL
#define ES_PG_KWV_IN 0x696eULL
#define ES_PG_KWV_IS 0x6973ULL
#define ES_PG_KWV_NOT 0x6e6f74ULL
#define ES_PG_KWV_ARRAY 0x6172726179ULL

struct es_pg_norm {
	__u64 hash;  /* the fingerprint so far */
	__u64 tok;   /* FNV-1a of the current token */
	__u64 kw;    /* first 8 folded bytes of the current word */
	__u32 state;
	__u32 start; /* offset of the current token's first byte */
	__u32 toklen;
	__u32 depth;      /* ( and [ nesting */
	__u32 list_depth; /* depth inside the IN/ARRAY list being collapsed, 0: none */
	__u32 pend_pos;   /* offset of the pending - or / */
	__u32 comma_pos;  /* offset of the held-back comma */
	__u32 ntok;       /* tokens emitted */
	__u8 pend;        /* '-' or '/' that may start a comment, 0: none */
	__u8 prev_kw;     /* ES_PG_KW_* of the last token */
	__u8 operand;     /* the last token ends an operand: a '-' next is binary */
	__u8 last_ph;     /* the last token emitted was a placeholder */
	__u8 pend_comma;  /* a comma after a placeholder in a list, held back */
	__u8 comma_ws;    /* whitespace before that comma */
	__u8 ws;          /* whitespace or a comment since the last token */
	__u8 cmd;         /* enum es_pg_cmd of the first token */
	__u8 last;        /* previous byte of a number */
	__u8 tag_len;     /* dollar-quote tag length (saturates at 255) */
	__u8 tag_j;       /* closing tag bytes matched */
	__u8 pad;
	__u8 tag[ES_PG_TAG_MAX];
};

ES_PG_NORM_INLINE void es_pg_norm_init(struct es_pg_norm *n)
{
	__builtin_memset(n, 0, sizeof(*n));
	n->hash = ES_PG_FNV_BASIS;
}

ES_PG_NORM_INLINE __u8 es_pg_cmd_of(__u64 kw)
{
	if (kw == ES_PG_KWV_SELECT)
		return 1; /* ES_PG_CMD_SELECT */
	if (kw == ES_PG_KWV_INSERT)
		return 2;
	if (kw == ES_PG_KWV_UPDATE)
		return 3;
	if (kw == ES_PG_KWV_DELETE)
		return 4;
	if (kw == ES_PG_KWV_BEGIN || kw == ES_PG_KWV_START)
		return 5;
	if (kw == ES_PG_KWV_COMMIT || kw == ES_PG_KWV_END)
		return 6;
	if (kw == ES_PG_KWV_ROLLBACK || kw == ES_PG_KWV_ABORT)
		return 7;
	return 0;
}

/* Emits a token for good: into the fingerprint and to the hook. */
ES_PG_NORM_INLINE void es_pg_out(struct es_pg_norm *n, __u32 kind, __u64 tok, __u32 start,
				 __u32 end, __u8 ws)
{
	__u64 h = (n->hash ^ tok) * ES_PG_MIX_MUL;

	n->hash = h ^ (h >> 31);
	ES_PG_NORM_EMIT(n, kind, start, end, ws);
	n->ntok++;
}

/* Emits a token, collapsing ", ?" inside IN (...) and ARRAY[...] lists. */
ES_PG_NORM_INLINE void es_pg_emit(struct es_pg_norm *n, __u32 kind, __u64 tok, __u32 start,
				  __u32 end)
{
	if (n->list_depth && n->depth == n->list_depth) {
		if (kind == ES_PG_TK_PH && n->pend_comma) {
			n->pend_comma = 0;
			n->ws = 0;
			return;
		}
		if (kind == ES_PG_TK_PUNCT && tok == ES_PG_TOK_COMMA && n->last_ph) {
			n->pend_comma = 1;
			n->comma_pos = start;
			n->comma_ws = n->ws;
			n->ws = 0;
			return;
		}
	}
	if (n->pend_comma) {
		n->pend_comma = 0;
		es_pg_out(n, ES_PG_TK_PUNCT, ES_PG_TOK_COMMA, n->comma_pos, n->comma_pos + 1,
			  n->comma_ws);
	}
	es_pg_out(n, kind, tok, start, end, n->ws);
	n->ws = 0;
	n->last_ph = kind == ES_PG_TK_PH;
}

ES_PG_NORM_INLINE void es_pg_ph(struct es_pg_norm *n, __u32 start, __u32 end)
{
	es_pg_emit(n, ES_PG_TK_PH, ES_PG_TOK_PH, start, end);
	n->prev_kw = ES_PG_KW_NONE;
	n->operand = 1;
}

ES_PG_NORM_INLINE void es_pg_op_end(struct es_pg_norm *n, __u32 end)
{
	es_pg_emit(n, ES_PG_TK_OP, n->tok, n->start, end);
	n->prev_kw = ES_PG_KW_NONE;
	n->operand = 0;
}

ES_PG_NORM_INLINE void es_pg_tok_char(struct es_pg_norm *n, __u8 c)
{
	n->tok = (n->tok ^ c) * ES_PG_FNV_PRIME;
}

ES_PG_NORM_INLINE void es_pg_word_char(struct es_pg_norm *n, __u8 c)
{
	if (c >= 'A' && c <= 'Z')
		c |= 0x20;
	n->tok = (n->tok ^ c) * ES_PG_FNV_PRIME;
	if (n->toklen < 8)
		n->kw = (n->kw << 8) | c;
	n->toklen++;
}

ES_PG_NORM_INLINE void es_pg_end_word(struct es_pg_norm *n, __u32 end)
{
	__u64 kw = n->toklen <= 8 ? n->kw : 0;
	__u8 next = ES_PG_KW_NONE;

	if (!n->ntok)
		n->cmd = es_pg_cmd_of(kw);
	if ((kw == ES_PG_KWV_TRUE || kw == ES_PG_KWV_FALSE || kw == ES_PG_KWV_NULL) &&
	    n->prev_kw != ES_PG_KW_IS && n->prev_kw != ES_PG_KW_NOT) {
		es_pg_ph(n, n->start, end);
		return;
	}
	if (kw == ES_PG_KWV_IS)
		next = ES_PG_KW_IS;
	else if (kw == ES_PG_KWV_NOT)
		next = ES_PG_KW_NOT;
	else if (kw == ES_PG_KWV_IN)
		next = ES_PG_KW_IN;
	else if (kw == ES_PG_KWV_ARRAY)
		next = ES_PG_KW_ARRAY;
	es_pg_emit(n, ES_PG_TK_WORD, n->tok, n->start, end);
	n->prev_kw = next;
	n->operand = 1;
}

ES_PG_NORM_INLINE void es_pg_punct(struct es_pg_norm *n, __u8 c, __u32 i)
{
	__u8 opens = (c == '(' && n->prev_kw == ES_PG_KW_IN) ||
		     (c == '[' && n->prev_kw == ES_PG_KW_ARRAY);

	es_pg_emit(n, ES_PG_TK_PUNCT, ES_PG_FNV1(c), i, i + 1);
	if (c == '(' || c == '[') {
		if (n->depth < 0xffff)
			n->depth++;
		if (opens)
			n->list_depth = n->depth;
	} else if (c == ')' || c == ']') {
		if (n->depth == n->list_depth)
			n->list_depth = 0;
		if (n->depth)
			n->depth--;
	}
	n->prev_kw = ES_PG_KW_NONE;
	n->operand = c == ')' || c == ']';
}

/* Continues or ends the token in progress. Returns 1 when c is consumed. */
ES_PG_NORM_INLINE int es_pg_continue(struct es_pg_norm *n, __u8 c, __u8 cls, __u32 i)
{
	switch (n->state) {
	case ES_PG_S_IDENT:
		if (cls == ES_PG_C_ID || cls == ES_PG_C_DIGIT || cls == ES_PG_C_DOLLAR) {
			es_pg_word_char(n, c);
			return 1;
		}
		if (cls == ES_PG_C_QUOTE && n->toklen == 1) {
			if (n->kw == 'e') {
				n->state = ES_PG_S_ESTR;
				return 1;
			}
			if (n->kw == 'b' || n->kw == 'x' || n->kw == 'n') {
				n->state = ES_PG_S_STR;
				return 1;
			}
		}
		es_pg_end_word(n, i);
		break;
	case ES_PG_S_NUM:
		if (cls == ES_PG_C_DIGIT || cls == ES_PG_C_ID || c == '.' ||
		    ((c == '+' || c == '-') && (n->last == 'e' || n->last == 'E'))) {
			n->last = c;
			return 1;
		}
		es_pg_ph(n, n->start, i);
		break;
	case ES_PG_S_STR:
		if (cls == ES_PG_C_QUOTE)
			n->state = ES_PG_S_STR_Q;
		return 1;
	case ES_PG_S_STR_Q:
		if (cls == ES_PG_C_QUOTE) {
			n->state = ES_PG_S_STR;
			return 1;
		}
		es_pg_ph(n, n->start, i);
		break;
	case ES_PG_S_ESTR:
		if (c == '\\')
			n->state = ES_PG_S_ESTR_BS;
		else if (cls == ES_PG_C_QUOTE)
			n->state = ES_PG_S_ESTR_Q;
		return 1;
	case ES_PG_S_ESTR_BS:
		n->state = ES_PG_S_ESTR;
		return 1;
	case ES_PG_S_ESTR_Q:
		if (cls == ES_PG_C_QUOTE) {
			n->state = ES_PG_S_ESTR;
			return 1;
		}
		es_pg_ph(n, n->start, i);
		break;
	case ES_PG_S_QID:
		es_pg_tok_char(n, c);
		if (cls == ES_PG_C_DQUOTE)
			n->state = ES_PG_S_QID_Q;
		return 1;
	case ES_PG_S_QID_Q:
		if (cls == ES_PG_C_DQUOTE) {
			es_pg_tok_char(n, c);
			n->state = ES_PG_S_QID;
			return 1;
		}
		es_pg_emit(n, ES_PG_TK_QIDENT, n->tok, n->start, i);
		n->prev_kw = ES_PG_KW_NONE;
		n->operand = 1;
		break;
	case ES_PG_S_LCOMMENT:
		if (c == '\n') {
			n->state = ES_PG_S_NONE;
			n->ws = 1;
		}
		return 1;
	case ES_PG_S_BCOMMENT:
		if (c == '*')
			n->state = ES_PG_S_BCOMMENT_STAR;
		return 1;
	case ES_PG_S_BCOMMENT_STAR:
		if (c == '/') {
			n->state = ES_PG_S_NONE;
			n->ws = 1;
		} else if (c != '*') {
			n->state = ES_PG_S_BCOMMENT;
		}
		return 1;
	case ES_PG_S_DOLLAR:
		if (cls == ES_PG_C_DIGIT) {
			n->state = ES_PG_S_NUM;
			n->last = c;
			return 1;
		}
		if (cls == ES_PG_C_DOLLAR) {
			n->tag_len = 0;
			n->state = ES_PG_S_DQ;
			return 1;
		}
		if (cls == ES_PG_C_ID) {
			n->tag[0] = c;
			n->tag_len = 1;
			n->state = ES_PG_S_DTAG;
			return 1;
		}
		n->tok = ES_PG_FNV1('$');
		es_pg_op_end(n, i);
		break;
	case ES_PG_S_DTAG:
		if (cls == ES_PG_C_ID || cls == ES_PG_C_DIGIT) {
			if (n->tag_len < ES_PG_TAG_MAX)
				n->tag[n->tag_len & (ES_PG_TAG_MAX - 1)] = c;
			if (n->tag_len < 255)
				n->tag_len++;
			return 1;
		}
		if (cls == ES_PG_C_DOLLAR) {
			n->state = ES_PG_S_DQ;
			return 1;
		}
		es_pg_ph(n, n->start, i);
		break;
	case ES_PG_S_DQ:
		if (cls == ES_PG_C_DOLLAR) {
			n->tag_j = 0;
			n->state = ES_PG_S_DQ_END;
		}
		return 1;
	case ES_PG_S_DQ_END:
		if (n->tag_j == n->tag_len && cls == ES_PG_C_DOLLAR) {
			es_pg_ph(n, n->start, i + 1);
			n->state = ES_PG_S_NONE;
			return 1;
		}
		if (n->tag_j < n->tag_len &&
		    (n->tag_j < ES_PG_TAG_MAX ? c == n->tag[n->tag_j & (ES_PG_TAG_MAX - 1)] :
						(cls == ES_PG_C_ID || cls == ES_PG_C_DIGIT))) {
			n->tag_j++;
			return 1;
		}
		if (cls == ES_PG_C_DOLLAR)
			n->tag_j = 0;
		else
			n->state = ES_PG_S_DQ;
		return 1;
	default: /* ES_PG_S_NONE, ES_PG_S_OP */
		return 0;
	}
	n->state = ES_PG_S_NONE;
	return 0;
}

/* Feeds byte c at offset i (never a NUL: the text ends at the first one). */
ES_PG_NORM_INLINE void es_pg_norm_step(struct es_pg_norm *n, __u8 c, __u32 i)
{
	__u8 cls = es_pg_cls[c];

	if (n->state != ES_PG_S_NONE && n->state != ES_PG_S_OP && es_pg_continue(n, c, cls, i))
		return;
	if (n->pend) {
		__u8 p = n->pend;

		n->pend = 0;
		if ((p == '-' && c == '-') || (p == '/' && c == '*') ||
		    (p == '-' && cls == ES_PG_C_DIGIT && (n->state == ES_PG_S_OP || !n->operand))) {
			if (n->state == ES_PG_S_OP)
				es_pg_op_end(n, n->pend_pos);
			if (cls == ES_PG_C_DIGIT) {
				n->state = ES_PG_S_NUM;
				n->start = n->pend_pos;
				n->last = c;
			} else {
				n->state = p == '-' ? ES_PG_S_LCOMMENT : ES_PG_S_BCOMMENT;
			}
			return;
		}
		/* The pending byte is an operator character after all. */
		if (n->state == ES_PG_S_NONE) {
			n->state = ES_PG_S_OP;
			n->start = n->pend_pos;
			n->tok = ES_PG_FNV_BASIS;
		}
		es_pg_tok_char(n, p);
	}
	if (n->state == ES_PG_S_OP) {
		if (cls == ES_PG_C_OP) {
			if (c == '-' || c == '/') {
				n->pend = c;
				n->pend_pos = i;
			} else {
				es_pg_tok_char(n, c);
			}
			return;
		}
		es_pg_op_end(n, i);
		n->state = ES_PG_S_NONE;
	}
	switch (cls) {
	case ES_PG_C_SPACE:
		n->ws = 1;
		return;
	case ES_PG_C_ID:
		n->state = ES_PG_S_IDENT;
		n->start = i;
		n->tok = ES_PG_FNV_BASIS;
		n->kw = 0;
		n->toklen = 0;
		es_pg_word_char(n, c);
		return;
	case ES_PG_C_DIGIT:
		n->state = ES_PG_S_NUM;
		n->start = i;
		n->last = c;
		return;
	case ES_PG_C_QUOTE:
		n->state = ES_PG_S_STR;
		n->start = i;
		return;
	case ES_PG_C_DQUOTE:
		n->state = ES_PG_S_QID;
		n->start = i;
		n->tok = ES_PG_FNV1('"');
		return;
	case ES_PG_C_DOLLAR:
		n->state = ES_PG_S_DOLLAR;
		n->start = i;
		return;
	case ES_PG_C_QMARK:
		es_pg_ph(n, i, i + 1);
		return;
	case ES_PG_C_OP:
		if (c == '-' || c == '/') {
			n->pend = c;
			n->pend_pos = i;
			return;
		}
		n->state = ES_PG_S_OP;
		n->start = i;
		n->tok = ES_PG_FNV1(c);
		return;
	default:
		es_pg_punct(n, c, i);
		return;
	}
}

#define ES_PG_RUN_MAX 32 /* bytes one es_pg_norm_chunk() call may skip */

/*
 * Feeds buf[pos..len) from pos < len and returns the new position (> pos):
 * first a run of bytes that cannot change the state (word characters,
 * digits, the inside of strings, quoted identifiers, comments and dollar
 * quotes, whitespace)
 * in a tight loop, then one byte through es_pg_norm_step(). The result is
 * exactly that of stepping every byte; mask bounds the index (a power of
 * two minus one no smaller than len, for the verifier; ~0 in user space).
 */
ES_PG_NORM_INLINE __u32 es_pg_norm_chunk(struct es_pg_norm *n, const char *buf, __u32 pos,
					 __u32 len, __u32 mask)
{
	__u32 st = n->state, k = 0;
	__u8 c, cls;

	if (st == ES_PG_S_IDENT) {
		__u64 tok = n->tok, kw = n->kw;
		__u32 toklen = n->toklen;

		for (; k < ES_PG_RUN_MAX && pos + k < len; k++) {
			c = (__u8)buf[(pos + k) & mask];
			cls = es_pg_cls[c];
			if (cls != ES_PG_C_ID && cls != ES_PG_C_DIGIT && cls != ES_PG_C_DOLLAR)
				break;
			if (c >= 'A' && c <= 'Z')
				c |= 0x20;
			tok = (tok ^ c) * ES_PG_FNV_PRIME;
			if (toklen < 8)
				kw = (kw << 8) | c;
			toklen++;
		}
		n->tok = tok;
		n->kw = kw;
		n->toklen = toklen;
	} else if (st == ES_PG_S_QID) {
		/* "quoted identifiers": Odoo quotes every column and table */
		__u64 tok = n->tok;

		for (; k < ES_PG_RUN_MAX && pos + k < len; k++) {
			c = (__u8)buf[(pos + k) & mask];
			if (c == '"')
				break;
			tok = (tok ^ c) * ES_PG_FNV_PRIME;
		}
		n->tok = tok;
	} else if (st == ES_PG_S_NONE && !n->pend) {
		for (; k < ES_PG_RUN_MAX && pos + k < len; k++) {
			if (es_pg_cls[(__u8)buf[(pos + k) & mask]] != ES_PG_C_SPACE)
				break;
		}
		if (k)
			n->ws = 1;
	} else if (st == ES_PG_S_NUM) {
		for (; k < ES_PG_RUN_MAX && pos + k < len; k++) {
			c = (__u8)buf[(pos + k) & mask];
			if (es_pg_cls[c] != ES_PG_C_DIGIT)
				break;
			n->last = c;
		}
	} else if (st == ES_PG_S_STR || st == ES_PG_S_ESTR || st == ES_PG_S_LCOMMENT ||
		   st == ES_PG_S_BCOMMENT || st == ES_PG_S_DQ) {
		/* Only these bytes can change the state. */
		__u8 stop1 = st == ES_PG_S_LCOMMENT ? '\n' :
			     st == ES_PG_S_BCOMMENT ? '*' :
			     st == ES_PG_S_DQ	 ? '$' :
						   '\'';
		__u8 stop2 = st == ES_PG_S_ESTR ? '\\' : stop1;

		for (; k < ES_PG_RUN_MAX && pos + k < len; k++) {
			c = (__u8)buf[(pos + k) & mask];
			if (c == stop1 || c == stop2)
				break;
		}
	}
	/* The byte that ended the run (or any byte) goes through the machine. */
	pos += k;
	if (pos >= len)
		return pos;
	es_pg_norm_step(n, (__u8)buf[pos & mask], pos);
	return pos + 1;
}

/* Ends the text (len bytes were fed). Returns the fingerprint, never 0. */
ES_PG_NORM_INLINE __u64 es_pg_norm_finish(struct es_pg_norm *n, __u32 len)
{
	switch (n->state) {
	case ES_PG_S_IDENT:
		es_pg_end_word(n, len);
		break;
	case ES_PG_S_QID:
	case ES_PG_S_QID_Q:
		es_pg_emit(n, ES_PG_TK_QIDENT, n->tok, n->start, len);
		break;
	case ES_PG_S_DOLLAR:
		n->tok = ES_PG_FNV1('$');
		es_pg_op_end(n, len);
		break;
	case ES_PG_S_OP:
		if (n->pend)
			es_pg_tok_char(n, n->pend);
		es_pg_op_end(n, len);
		break;
	case ES_PG_S_NONE:
		if (n->pend) {
			n->start = n->pend_pos;
			n->tok = ES_PG_FNV1(n->pend);
			es_pg_op_end(n, len);
		}
		break;
	case ES_PG_S_LCOMMENT:
	case ES_PG_S_BCOMMENT:
	case ES_PG_S_BCOMMENT_STAR:
		break;
	default: /* every kind of literal, even unterminated */
		es_pg_ph(n, n->start, len);
		break;
	}
	if (n->pend_comma) {
		n->pend_comma = 0;
		es_pg_out(n, ES_PG_TK_PUNCT, ES_PG_TOK_COMMA, n->comma_pos, n->comma_pos + 1,
			  n->comma_ws);
	}
	n->pend = 0;
	n->state = ES_PG_S_NONE;
	return n->hash ? n->hash : 1;
}

/*
 * Resuming from a cached state. The normaliser's whole state is struct
 * es_pg_norm and es_pg_norm_chunk() may stop at any byte, so feeding a
 * text from a copy of the state taken after its first B bytes gives
 * exactly what feeding it from the start does. Statements of one shape
 * differ only from their first literal on (Odoo sends them with literals
 * inlined), so the kernel caches the state after a statement's head and
 * skips it the next time: only the tail goes through the machine.
 *
 * The head is the whole 8-byte words before the first word holding a quote
 * or a digit that can start a number (one not inside a name: Odoo selects
 * columns like "street2" or "x_studio_field_1", and a head cut there would
 * leave kilobytes of column list to the machine), where a literal can
 * start. It is hashed a word at a time; the cache key is the hash and the
 * length. Where the head ends only decides how much is skipped, never the
 * result: a head may hold NULL or TRUE, or a number glued to a name.
 */
#define ES_PG_ONES 0x0101010101010101ULL
#define ES_PG_HIGHS 0x8080808080808080ULL
#define ES_PG_LOWS (ES_PG_ONES * 127)

/*
 * The high bit of each byte of w strictly between lo and hi (ASCII bytes
 * only: lo <= 127, hi <= 128). Exact per byte: masking the high bits first
 * keeps carries and borrows inside each byte.
 */
#define ES_PG_BETWEEN(w, lo, hi)                                                   \
	(((ES_PG_ONES * (127 + (hi)) - ((w) & ES_PG_LOWS)) & ~(w) &                \
	  (((w) & ES_PG_LOWS) + ES_PG_ONES * (127 - (lo)))) & ES_PG_HIGHS)

/* High bits of the bytes of w that may be part of a name: letters, digits, '_'. */
ES_PG_NORM_INLINE __u64 es_pg_name_bytes(__u64 w)
{
	return ES_PG_BETWEEN(w, '0' - 1, '9' + 1) | ES_PG_BETWEEN(w, 'A' - 1, 'Z' + 1) |
	       ES_PG_BETWEEN(w, 'a' - 1, 'z' + 1) | ES_PG_BETWEEN(w, '_' - 1, '_' + 1);
}

/*
 * Whether word w (8 text bytes after the word prev; 0 for the first) can be
 * part of a head: no quote, and every digit follows a name byte.
 */
ES_PG_NORM_INLINE int es_pg_head_word(__u64 w, __u64 prev)
{
	__u64 d = w ^ (ES_PG_ONES * '0'), q = w ^ (ES_PG_ONES * '\'');
	__u64 digits, after_name;

	/* The common word first: no digit, no quote (a cheap test, exact for "any"). */
	if (!((((d - ES_PG_ONES * 10) & ~d) | ((q - ES_PG_ONES) & ~q)) & ES_PG_HIGHS))
		return 1;
	if (ES_PG_BETWEEN(w, '\'' - 1, '\'' + 1))
		return 0;
	digits = ES_PG_BETWEEN(w, '0' - 1, '9' + 1);
	/* Byte i's flag moves to byte i + 1 (little endian: the next byte). */
	after_name = (es_pg_name_bytes(w) << 8) | (es_pg_name_bytes(prev) >> 56);
	return !(digits & ~after_name);
}

ES_PG_NORM_INLINE __u64 es_pg_head_mix(__u64 h, __u64 w)
{
	h = (h ^ w) * ES_PG_MIX_MUL;
	return h ^ (h >> 29);
}

#endif
