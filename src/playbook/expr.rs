//! The condition language of playbook decision trees, and the `{{ … }}`
//! templates of action parameters.
//!
//! Why a small language of our own rather than Rego or a scripting engine:
//! conditions are short comparisons over named facts
//! (`health.reason == "OOMKilled" && metrics.memory_usage_ratio >= 0.9`), which
//! on-call engineers read at a glance and which look like PromQL/CEL. A
//! hand-written grammar of a dozen operators is total (no loops, no I/O, always
//! terminates), is parsed when a playbook loads so a typo is reported with its
//! file and line, and evaluates in microseconds without an engine per
//! playbook. Rego would need a rule per condition and would report errors
//! against generated source instead of the YAML line.
//!
//! Grammar (lowest precedence first):
//!
//! ```text
//! expr  := or
//! or    := and ("||" and)*
//! and   := not ("&&" not)*
//! not   := "!" not | cmp
//! cmp   := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum | "in" list)?
//! sum   := prod (("+" | "-") prod)*
//! prod  := unary (("*" | "/") unary)*
//! unary := "-" unary | atom
//! atom  := number | string | true | false | list | name | call | "(" expr ")"
//! name  := ident ("." ident)*            e.g. metrics.memory_usage_ratio
//! call  := exists(name) | ceil(e) | floor(e) | round(e) | min(e, e) | max(e, e)
//!        | contains(e, e) | starts_with(e, e)
//! ```
//!
//! Missing facts: a name the investigation did not produce is *unknown*, and
//! unknown propagates like SQL's NULL (Kleene logic): `unknown && false` is
//! false, `unknown || true` is true, and anything else with unknown — a
//! comparison (`x > 3`, `x == "a"`, `x in [..]`), arithmetic, a function, `!x`
//! — is unknown. [`Expr::holds`] is true only for a definite true; the
//! decision tree (see `Playbook::evaluate`) goes further: a condition that is
//! unknown stops the walk, so the playbook does not act at all (a later,
//! broader branch is never taken in place of one the evidence could not
//! decide), and the evaluation names the unknown facts.
//!
//! `exists(name)` is never unknown: it is true when the investigation
//! produced the fact and false when it did not, so `!exists(x)` means "x was
//! not observed" — its evidence was not gathered, its connector cannot see
//! it for this resource, or reading it failed. It never means x is false or 0.
//! Type mistakes (`health.reason > 3`) are evaluation errors, not false.

use std::fmt;

use super::facts::{Fact, Facts};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    Str(String),
    Bool(bool),
    List(Vec<Expr>),
    Name(String),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
}

/// Built-in functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Exists,
    Ceil,
    Floor,
    Round,
    Min,
    Max,
    Contains,
    StartsWith,
}

impl Func {
    fn by_name(name: &str) -> Option<(Func, usize)> {
        Some(match name {
            "exists" => (Func::Exists, 1),
            "ceil" => (Func::Ceil, 1),
            "floor" => (Func::Floor, 1),
            "round" => (Func::Round, 1),
            "min" => (Func::Min, 2),
            "max" => (Func::Max, 2),
            "contains" => (Func::Contains, 2),
            "starts_with" => (Func::StartsWith, 2),
            _ => return None,
        })
    }
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Num(f64),
    Str(String),
    Bool(bool),
    List(Vec<Val>),
    /// A fact the investigation did not produce.
    Unknown,
}

impl Val {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Num(_) => "number",
            Val::Str(_) => "string",
            Val::Bool(_) => "boolean",
            Val::List(_) => "list",
            Val::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Num(n) => f.write_str(&format_number(*n)),
            Val::Str(s) => write!(f, "{s:?}"),
            Val::Bool(b) => write!(f, "{b}"),
            Val::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Val::Unknown => f.write_str("unknown"),
        }
    }
}

/// Formats a number as parameters expect it: whole numbers without a
/// fraction, others with at most six decimals and no trailing zeros.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        let s = format!("{n:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

// ---------------------------------------------------------------- lexer --

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n = text
                .parse::<f64>()
                .map_err(|_| format!("bad number {text:?} at column {}", start + 1))?;
            out.push((Tok::Num(n), start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            if text.ends_with('.') || text.contains("..") {
                return Err(format!("bad name {text:?} at column {}", start + 1));
            }
            out.push((Tok::Ident(text), start));
            continue;
        }
        if c == '"' || c == '\'' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated string at column {}", start + 1)),
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some('n') => s.push('\n'),
                            Some(&e) => s.push(e),
                            None => {
                                return Err(format!("unterminated string at column {}", start + 1));
                            }
                        }
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push((Tok::Str(s), start));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = match two.as_str() {
            "&&" => Some("&&"),
            "||" => Some("||"),
            "==" => Some("=="),
            "!=" => Some("!="),
            "<=" => Some("<="),
            ">=" => Some(">="),
            _ => None,
        };
        if let Some(op) = op {
            out.push((Tok::Op(op), start));
            i += 2;
            continue;
        }
        let op = match c {
            '<' => "<",
            '>' => ">",
            '!' => "!",
            '+' => "+",
            '-' => "-",
            '*' => "*",
            '/' => "/",
            '(' => "(",
            ')' => ")",
            '[' => "[",
            ']' => "]",
            ',' => ",",
            '=' => return Err(format!("`=` at column {}: use `==` to compare", start + 1)),
            _ => return Err(format!("unexpected {c:?} at column {}", start + 1)),
        };
        out.push((Tok::Op(op), start));
        i += 1;
    }
    Ok(out)
}

// --------------------------------------------------------------- parser --

/// How deeply an expression may nest (parentheses, lists, calls, `!`, `-`):
/// the parser, evaluator and drop all recurse, so a playbook author's
/// `((((…` or `!!!!…` must end in an error, not a stack overflow.
pub const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    len: usize,
    depth: usize,
}

/// Parses one expression; the error names the column.
pub fn parse(src: &str) -> Result<Expr, String> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        len: src.chars().count(),
        depth: 0,
    };
    if p.toks.is_empty() {
        return Err("empty expression".into());
    }
    let e = p.or()?;
    if let Some((t, at)) = p.toks.get(p.pos) {
        return Err(format!("unexpected {} at column {}", describe(t), at + 1));
    }
    Ok(e)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {}", format_number(*n)),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Op(o) => format!("`{o}`"),
    }
}

impl Parser {
    fn peek_op(&self, op: &str) -> bool {
        matches!(self.toks.get(self.pos), Some((Tok::Op(o), _)) if *o == op)
    }

    fn peek_ident(&self, word: &str) -> bool {
        matches!(self.toks.get(self.pos), Some((Tok::Ident(w), _)) if w == word)
    }

    fn expect_op(&mut self, op: &str) -> Result<(), String> {
        if self.peek_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{op}`")))
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.toks.get(self.pos) {
            Some((t, at)) => format!(
                "expected {wanted}, found {} at column {}",
                describe(t),
                at + 1
            ),
            None => format!(
                "expected {wanted} at column {} (end of expression)",
                self.len + 1
            ),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_op("||") {
            self.pos += 1;
            left = Expr::Binary(BinOp::Or, Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.peek_op("&&") {
            self.pos += 1;
            left = Expr::Binary(BinOp::And, Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    /// One level deeper, or an error naming the column where the limit is passed.
    fn descend(&mut self, at: usize) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "the expression nests deeper than {MAX_DEPTH} levels at column {}",
                at + 1
            ));
        }
        Ok(())
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.peek_op("!") {
            self.descend(self.toks[self.pos].1)?;
            self.pos += 1;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, String> {
        let left = self.sum()?;
        for (sym, op) in [
            ("==", BinOp::Eq),
            ("!=", BinOp::Ne),
            ("<=", BinOp::Le),
            (">=", BinOp::Ge),
            ("<", BinOp::Lt),
            (">", BinOp::Gt),
        ] {
            if self.peek_op(sym) {
                self.pos += 1;
                return Ok(Expr::Binary(op, Box::new(left), Box::new(self.sum()?)));
            }
        }
        if self.peek_ident("in") {
            self.pos += 1;
            if !self.peek_op("[") {
                return Err(self.unexpected("a list `[…]` after `in`"));
            }
            let list = self.atom()?;
            return Ok(Expr::In(Box::new(left), Box::new(list)));
        }
        Ok(left)
    }

    fn sum(&mut self) -> Result<Expr, String> {
        let mut left = self.prod()?;
        loop {
            let op = if self.peek_op("+") {
                BinOp::Add
            } else if self.peek_op("-") {
                BinOp::Sub
            } else {
                return Ok(left);
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.prod()?));
        }
    }

    fn prod(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            let op = if self.peek_op("*") {
                BinOp::Mul
            } else if self.peek_op("/") {
                BinOp::Div
            } else {
                return Ok(left);
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_op("-") {
            self.descend(self.toks[self.pos].1)?;
            self.pos += 1;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(inner)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let Some((tok, at)) = self.toks.get(self.pos).cloned() else {
            return Err(self.unexpected("a value"));
        };
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Op("(") => {
                self.descend(at)?;
                let e = self.or()?;
                self.expect_op(")")?;
                self.depth -= 1;
                Ok(e)
            }
            Tok::Op("[") => {
                self.descend(at)?;
                let mut items = Vec::new();
                if !self.peek_op("]") {
                    loop {
                        items.push(self.or()?);
                        if self.peek_op(",") {
                            self.pos += 1;
                            continue;
                        }
                        break;
                    }
                }
                self.expect_op("]")?;
                self.depth -= 1;
                Ok(Expr::List(items))
            }
            Tok::Ident(word) => match word.as_str() {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "in" => Err(format!("unexpected `in` at column {}", at + 1)),
                _ if self.peek_op("(") => {
                    self.descend(at)?;
                    let e = self.call(&word, at);
                    self.depth -= 1;
                    e
                }
                _ => Ok(Expr::Name(word)),
            },
            Tok::Op(_) => {
                self.pos -= 1;
                Err(self.unexpected("a value"))
            }
        }
    }

    fn call(&mut self, name: &str, at: usize) -> Result<Expr, String> {
        let Some((func, arity)) = Func::by_name(name) else {
            return Err(format!("unknown function `{name}` at column {}", at + 1));
        };
        self.expect_op("(")?;
        let mut args = Vec::new();
        if !self.peek_op(")") {
            loop {
                args.push(self.or()?);
                if self.peek_op(",") {
                    self.pos += 1;
                    continue;
                }
                break;
            }
        }
        self.expect_op(")")?;
        if args.len() != arity {
            return Err(format!(
                "`{name}` takes {arity} argument(s), got {} (column {})",
                args.len(),
                at + 1
            ));
        }
        if func == Func::Exists && !matches!(args[0], Expr::Name(_)) {
            return Err(format!("`exists` takes a fact name (column {})", at + 1));
        }
        Ok(Expr::Call(func, args))
    }
}

// ------------------------------------------------------------ evaluator --

impl Expr {
    /// Evaluates against `facts`; unknown facts propagate, type mistakes are errors.
    pub fn eval(&self, facts: &Facts) -> Result<Val, String> {
        Ok(match self {
            Expr::Num(n) => Val::Num(*n),
            Expr::Str(s) => Val::Str(s.clone()),
            Expr::Bool(b) => Val::Bool(*b),
            Expr::List(items) => Val::List(
                items
                    .iter()
                    .map(|e| e.eval(facts))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Name(name) => match facts.get(name) {
                Some(Fact::Bool(b)) => Val::Bool(*b),
                Some(Fact::Number(n)) => Val::Num(*n),
                Some(Fact::Text(s)) => Val::Str(s.clone()),
                None => Val::Unknown,
            },
            Expr::Not(e) => match e.eval(facts)? {
                Val::Bool(b) => Val::Bool(!b),
                Val::Unknown => Val::Unknown,
                v => return Err(format!("`!` needs a boolean, got {}", v.type_name())),
            },
            Expr::Neg(e) => match e.eval(facts)? {
                Val::Num(n) => Val::Num(-n),
                Val::Unknown => Val::Unknown,
                v => return Err(format!("`-` needs a number, got {}", v.type_name())),
            },
            Expr::Binary(op @ (BinOp::And | BinOp::Or), l, r) => {
                let l = logical(*op, l.eval(facts)?)?;
                // Short-circuit on a decisive left side.
                match (op, l) {
                    (BinOp::And, Some(false)) => return Ok(Val::Bool(false)),
                    (BinOp::Or, Some(true)) => return Ok(Val::Bool(true)),
                    _ => {}
                }
                let r = logical(*op, r.eval(facts)?)?;
                match (op, l, r) {
                    (BinOp::And, _, Some(false)) => Val::Bool(false),
                    (BinOp::Or, _, Some(true)) => Val::Bool(true),
                    (_, Some(a), Some(b)) => {
                        Val::Bool(if *op == BinOp::And { a && b } else { a || b })
                    }
                    _ => Val::Unknown,
                }
            }
            Expr::Binary(op, l, r) => binary(*op, l.eval(facts)?, r.eval(facts)?)?,
            Expr::In(l, r) => {
                let needle = l.eval(facts)?;
                let Val::List(items) = r.eval(facts)? else {
                    return Err("`in` needs a list".into());
                };
                if needle == Val::Unknown {
                    Val::Unknown
                } else {
                    Val::Bool(items.contains(&needle))
                }
            }
            Expr::Call(func, args) => call(*func, args, facts)?,
        })
    }

    /// Whether the condition is definitely true (unknown is not true).
    pub fn holds(&self, facts: &Facts) -> Result<bool, String> {
        match self.eval(facts)? {
            Val::Bool(b) => Ok(b),
            Val::Unknown => Ok(false),
            v => Err(format!("condition is a {}, not a boolean", v.type_name())),
        }
    }
}

fn logical(op: BinOp, v: Val) -> Result<Option<bool>, String> {
    match v {
        Val::Bool(b) => Ok(Some(b)),
        Val::Unknown => Ok(None),
        v => Err(format!(
            "`{}` needs booleans, got {}",
            op.symbol(),
            v.type_name()
        )),
    }
}

fn binary(op: BinOp, l: Val, r: Val) -> Result<Val, String> {
    if l == Val::Unknown || r == Val::Unknown {
        return Ok(Val::Unknown);
    }
    let mismatch = |l: &Val, r: &Val| {
        format!(
            "`{}` cannot compare a {} with a {}",
            op.symbol(),
            l.type_name(),
            r.type_name()
        )
    };
    Ok(match op {
        BinOp::Eq | BinOp::Ne => {
            if std::mem::discriminant(&l) != std::mem::discriminant(&r) {
                return Err(mismatch(&l, &r));
            }
            Val::Bool((l == r) == (op == BinOp::Eq))
        }
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ord = match (&l, &r) {
                (Val::Num(a), Val::Num(b)) => a.partial_cmp(b),
                (Val::Str(a), Val::Str(b)) => Some(a.cmp(b)),
                _ => return Err(mismatch(&l, &r)),
            };
            let Some(ord) = ord else {
                return Ok(Val::Bool(false));
            };
            Val::Bool(match op {
                BinOp::Lt => ord.is_lt(),
                BinOp::Le => ord.is_le(),
                BinOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
            let (Val::Num(a), Val::Num(b)) = (&l, &r) else {
                return Err(format!(
                    "`{}` needs numbers, got {} and {}",
                    op.symbol(),
                    l.type_name(),
                    r.type_name()
                ));
            };
            let v = match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                _ => {
                    if *b == 0.0 {
                        return Err("division by zero".into());
                    }
                    a / b
                }
            };
            Val::Num(v)
        }
        BinOp::And | BinOp::Or => unreachable!("logical operators are evaluated above"),
    })
}

fn call(func: Func, args: &[Expr], facts: &Facts) -> Result<Val, String> {
    if func == Func::Exists {
        let Expr::Name(name) = &args[0] else {
            return Err("`exists` takes a fact name".into());
        };
        return Ok(Val::Bool(facts.get(name).is_some()));
    }
    let vals: Vec<Val> = args
        .iter()
        .map(|a| a.eval(facts))
        .collect::<Result<_, _>>()?;
    if vals.contains(&Val::Unknown) {
        return Ok(Val::Unknown);
    }
    let num = |v: &Val| match v {
        Val::Num(n) => Ok(*n),
        v => Err(format!("{func:?} needs numbers, got {}", v.type_name()).to_lowercase()),
    };
    let text = |v: &Val| match v {
        Val::Str(s) => Ok(s.clone()),
        v => Err(format!("{func:?} needs strings, got {}", v.type_name()).to_lowercase()),
    };
    Ok(match func {
        Func::Ceil => Val::Num(num(&vals[0])?.ceil()),
        Func::Floor => Val::Num(num(&vals[0])?.floor()),
        Func::Round => Val::Num(num(&vals[0])?.round()),
        Func::Min => Val::Num(num(&vals[0])?.min(num(&vals[1])?)),
        Func::Max => Val::Num(num(&vals[0])?.max(num(&vals[1])?)),
        Func::Contains => Val::Bool(text(&vals[0])?.contains(&text(&vals[1])?)),
        Func::StartsWith => Val::Bool(text(&vals[0])?.starts_with(&text(&vals[1])?)),
        Func::Exists => unreachable!("handled above"),
    })
}

// ------------------------------------------------------------ templates --

/// A parameter template: literal text with `{{ expr }}` holes.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Hole(Expr),
}

impl Template {
    /// Parses `text`; an unclosed hole or a bad expression is an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| "`{{` without a closing `}}`".to_string())?;
            let expr =
                parse(after[..close].trim()).map_err(|e| format!("in `{{{{ … }}}}`: {e}"))?;
            parts.push(Part::Hole(expr));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// Renders with `facts`; a hole whose value is unknown or not a scalar is an error.
    pub fn render(&self, facts: &Facts) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Hole(e) => match e.eval(facts)? {
                    Val::Num(n) => out.push_str(&format_number(n)),
                    Val::Str(s) => out.push_str(&s),
                    Val::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                    Val::Unknown => {
                        return Err(format!(
                            "a fact it needs is missing ({})",
                            missing_names(e, facts).join(", ")
                        ));
                    }
                    Val::List(_) => return Err("a template hole cannot render a list".into()),
                },
            }
        }
        Ok(out)
    }

    /// Where a rendered value comes from: an alert if any hole reads
    /// `alert.*` (whoever posted the alert chose it), else facts if a hole
    /// reads an observed fact, else the live object if it reads `resource.*`,
    /// else the playbook (literal text only).
    pub fn source(&self) -> crate::event::ParamSource {
        use crate::event::ParamSource;
        let mut names = Vec::new();
        for part in &self.parts {
            if let Part::Hole(e) = part {
                missing_names(e, &Facts::new())
                    .into_iter()
                    .for_each(|n| names.push(n));
            }
        }
        if names
            .iter()
            .any(|n| n == "alert" || n.starts_with("alert."))
        {
            ParamSource::Alert
        } else if names.iter().any(|n| !n.starts_with("resource.")) {
            ParamSource::Facts
        } else if !names.is_empty() {
            ParamSource::Live
        } else {
            ParamSource::Playbook
        }
    }
}

impl Expr {
    /// Every fact name the expression refers to, in order, without repeats.
    pub fn names(&self) -> Vec<String> {
        fn walk(e: &Expr, out: &mut Vec<String>) {
            match e {
                Expr::Name(n) => {
                    if !out.contains(n) {
                        out.push(n.clone());
                    }
                }
                Expr::Not(a) | Expr::Neg(a) => walk(a, out),
                Expr::Binary(_, a, b) | Expr::In(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::List(items) | Expr::Call(_, items) => {
                    items.iter().for_each(|i| walk(i, out));
                }
                Expr::Num(_) | Expr::Str(_) | Expr::Bool(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// The missing facts that make this expression unknown: those under a
    /// part whose value is unknown (a side of `&&`/`||` that is decided
    /// does not count). Empty when the value is known.
    pub fn unknown_because(&self, facts: &Facts) -> Vec<String> {
        fn walk(e: &Expr, facts: &Facts, out: &mut Vec<String>) {
            if !matches!(e.eval(facts), Ok(Val::Unknown)) {
                return;
            }
            match e {
                Expr::Name(n) => {
                    if !out.contains(n) {
                        out.push(n.clone());
                    }
                }
                Expr::Not(a) | Expr::Neg(a) => walk(a, facts, out),
                Expr::Binary(_, a, b) | Expr::In(a, b) => {
                    walk(a, facts, out);
                    walk(b, facts, out);
                }
                Expr::List(items) | Expr::Call(_, items) => {
                    items.iter().for_each(|i| walk(i, facts, out));
                }
                Expr::Num(_) | Expr::Str(_) | Expr::Bool(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(self, facts, &mut out);
        out
    }

    /// The fact names the expression refers to that `facts` lacks.
    pub fn missing(&self, facts: &Facts) -> Vec<String> {
        self.names()
            .into_iter()
            .filter(|n| facts.get(n).is_none())
            .collect()
    }
}

impl Template {
    /// Every fact name the template's holes refer to.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for part in &self.parts {
            if let Part::Hole(e) = part {
                for n in e.names() {
                    if !out.contains(&n) {
                        out.push(n);
                    }
                }
            }
        }
        out
    }
}

/// The fact names `e` refers to that `facts` lacks.
fn missing_names(e: &Expr, facts: &Facts) -> Vec<String> {
    e.missing(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts::new()
            .with("health.reason", "OOMKilled")
            .with("health.status", "unhealthy")
            .with("metrics.memory_usage_ratio", 0.97)
            .with("metrics.memory_limit_mib", 512.0)
            .with("events.restarts", 7.0)
            .with("changes.recent_deploy", true)
    }

    fn holds(src: &str) -> bool {
        parse(src).unwrap().holds(&facts()).unwrap()
    }

    #[test]
    fn conditions_evaluate_both_ways() {
        assert!(holds(
            r#"health.reason == "OOMKilled" && metrics.memory_usage_ratio >= 0.9"#
        ));
        assert!(!holds(
            r#"health.reason == "OOMKilled" && metrics.memory_usage_ratio >= 0.99"#
        ));
        assert!(holds("events.restarts > 5 || changes.recent_deploy"));
        assert!(!holds("events.restarts > 10 || !changes.recent_deploy"));
        assert!(holds(r#"health.reason in ["OOMKilled", "Error"]"#));
        assert!(!holds(r#"health.reason in ["Error"]"#));
        assert!(holds("metrics.memory_limit_mib * 1.5 == 768"));
        assert!(holds("-(1 + 2) * 3 == -9 && 10 / 4 == 2.5"));
        assert!(holds(
            r#"starts_with(health.reason, "OOM") && contains('xyz', 'y')"#
        ));
        assert!(holds(
            "max(1, 2) == 2 && min(1, 2) == 1 && ceil(1.2) == 2 && floor(1.8) == 1 && round(1.5) == 2"
        ));
    }

    #[test]
    fn precedence_binds_and_tighter_than_or() {
        assert!(holds("true || false && false"));
        assert!(!holds("(true || false) && false"));
        assert!(holds("!false && !(1 > 2)"));
    }

    #[test]
    fn unknown_facts_never_make_a_branch_true() {
        assert!(!holds("metrics.cpu_throttle_ratio > 0.5"));
        assert!(!holds("!(metrics.cpu_throttle_ratio > 0.5)"));
        assert!(!holds("metrics.nope == 1 && true"));
        assert!(holds("metrics.nope == 1 || true"));
        assert!(!holds("metrics.nope == 1 && false"));
        assert!(holds("!exists(metrics.nope) && exists(health.reason)"));
        assert!(!holds(r#"metrics.nope in ["a"]"#));
    }

    #[test]
    fn only_the_facts_that_left_a_condition_undecided_are_named() {
        let e = parse(
            r#"(health.reason == "OOMKilled" || logs.absent) && changes.gone && changes.recent_deploy"#,
        )
        .unwrap();
        assert_eq!(
            e.unknown_because(&facts()),
            vec!["changes.gone".to_string()]
        );
        let e = parse("!(metrics.a > 1) && max(metrics.b, 2) > 1").unwrap();
        assert_eq!(
            e.unknown_because(&facts()),
            vec!["metrics.a".to_string(), "metrics.b".to_string()]
        );
        assert!(
            parse("health.reason == \"x\" && metrics.a > 1")
                .unwrap()
                .unknown_because(&facts())
                .is_empty()
        );
    }

    #[test]
    fn type_mistakes_are_errors() {
        let f = facts();
        for src in [
            "health.reason > 3",
            "health.reason == 3",
            "health.reason && true",
            "!health.reason",
            "metrics.memory_limit_mib",
            "1 / 0 == 1",
            r#""a" + 1 == 2"#,
        ] {
            assert!(parse(src).unwrap().holds(&f).is_err(), "{src}");
        }
    }

    #[test]
    fn deep_nesting_is_a_clean_error_not_a_stack_overflow() {
        for src in [
            format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000)),
            format!("{}true", "!".repeat(10_000)),
            format!("{}1 > 0", "-".repeat(10_000)),
            format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)),
        ] {
            let e = parse(&src).unwrap_err();
            assert!(e.contains("deeper than 64 levels"), "{e}");
            assert!(e.contains("column 65"), "{e}");
        }
        let calls = format!("{}1{} > 0", "ceil(".repeat(10_000), ")".repeat(10_000));
        let e = parse(&calls).unwrap_err();
        assert!(e.contains("deeper than 64 levels at column 321"), "{e}");
        // Up to the limit, nesting is fine.
        let ok = format!("{}true{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        assert!(parse(&format!("{}true", "!".repeat(MAX_DEPTH))).is_ok());
    }

    #[test]
    fn syntax_errors_name_the_column() {
        for (src, needle) in [
            ("health.reason = 1", "column 15"),
            ("a &&", "end of expression"),
            ("(a == 1", "`)`"),
            ("a == 1 b", "column 8"),
            ("\"open", "unterminated"),
            ("nope(1)", "unknown function"),
            ("max(1)", "takes 2"),
            ("a in b", "list"),
            ("exists(1)", "fact name"),
            ("", "empty"),
            ("a..b", "bad name"),
        ] {
            let err = parse(src).unwrap_err();
            assert!(err.contains(needle), "{src}: {err}");
        }
    }

    #[test]
    fn templates_render_numbers_and_fail_on_missing_facts() {
        let f = facts();
        let t = Template::parse("{{ ceil(metrics.memory_limit_mib * 1.5) }}").unwrap();
        assert_eq!(t.render(&f).unwrap(), "768");
        let t =
            Template::parse("ratio={{ metrics.memory_usage_ratio }} of {{health.reason}}").unwrap();
        assert_eq!(t.render(&f).unwrap(), "ratio=0.97 of OOMKilled");
        assert_eq!(
            Template::parse("plain").unwrap().render(&f).unwrap(),
            "plain"
        );
        let err = Template::parse("{{ metrics.absent * 2 }}")
            .unwrap()
            .render(&f)
            .unwrap_err();
        assert!(err.contains("metrics.absent"), "{err}");
        assert!(Template::parse("{{ 1 + }}").is_err());
        use crate::event::ParamSource;
        let source = |t: &str| Template::parse(t).unwrap().source();
        assert_eq!(source("m5.large"), ParamSource::Playbook);
        assert_eq!(source("{{ alert.labels.size }}"), ParamSource::Alert);
        assert_eq!(
            source("x{{ health.reason }}-{{ alert.name }}"),
            ParamSource::Alert
        );
        assert_eq!(
            source("{{ ceil(metrics.memory_limit_mib * 1.5) }}"),
            ParamSource::Facts
        );
        assert_eq!(source("{{ resource.labels.app }}"), ParamSource::Live);
        assert!(Template::parse("{{ open").is_err());
    }

    #[test]
    fn numbers_format_for_parameters() {
        assert_eq!(format_number(768.0), "768");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(1.0 / 3.0), "0.333333");
        assert_eq!(format_number(-2.0), "-2");
    }
}
