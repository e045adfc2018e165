//! Builds the [`Node`] tree from `saphyr-parser` events, enforcing the
//! [`LoadOptions`] budgets.
//!
//! The builder is iterative (an explicit stack of open sequences and
//! mappings), so nesting depth costs heap, not call stack, and the depth
//! limit is checked as soon as a collection opens. Aliases are expanded by
//! replaying the recorded events of their anchor; each anchor remembers how
//! many nodes, levels and bytes it expands to, so an alias bomb is refused
//! before any of its expansion is built.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Marker, Parser, ScanError};

use super::positions::Positions;
use super::{LoadOptions, Node, NodeValue, ScalarStyle, count_u32, scalar};
use crate::diagnostic::{Diagnostic, Location, Span};

/// Loads all non-empty documents of `source`.
pub(crate) fn load(source: &str, options: &LoadOptions) -> Result<Vec<Node>, Diagnostic> {
    if source.len() > options.max_bytes {
        return Err(Diagnostic::error(
            "budget",
            format!(
                "the file is {} bytes, more than the limit of {} bytes",
                source.len(),
                options.max_bytes
            ),
        )
        .with_hint("split it into smaller files"));
    }
    Builder::new(source, options).run()
}

type RawSpan = saphyr_parser::Span;

/// Whether an event comes from the parser or from replaying an anchor.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EventSource {
    Parser,
    Replay {
        /// Set on the replay's last event: the alias's span.
        root: Option<RawSpan>,
    },
}

/// A completed anchor: where its events are recorded and what expanding it
/// costs.
struct Anchor {
    events: std::ops::Range<usize>,
    nodes: usize,
    height: usize,
    bytes: usize,
}

/// Bookkeeping for an anchored collection that is still open.
struct OpenAnchor {
    id: usize,
    first_event: usize,
    nodes_before: usize,
    bytes_before: usize,
}

/// An open sequence or mapping.
struct Frame {
    start: RawSpan,
    kind: FrameKind,
    /// Nesting levels of the deepest child so far (0 for scalars only).
    child_height: usize,
    anchor: Option<OpenAnchor>,
}

enum FrameKind {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
}

/// Where the next event comes from: the parser, or a recorded anchor.
struct Replay {
    next: usize,
    end: usize,
    /// Where the alias is written: the span of the expansion's root node.
    alias: RawSpan,
}

struct Builder<'s, 'o> {
    source: &'s str,
    options: &'o LoadOptions,
    positions: Positions<'s>,
    stack: Vec<Frame>,
    root: Option<Node>,
    documents: Vec<Node>,
    /// Events of anchored nodes (from the parser only), for replay.
    recording: Vec<(Event<'s>, RawSpan)>,
    open_anchors: usize,
    anchors: HashMap<usize, Anchor>,
    replays: Vec<Replay>,
    nodes: usize,
    scalar_bytes: usize,
    alias_uses: usize,
    alias_nodes: usize,
    alias_bytes: usize,
}

impl<'s, 'o> Builder<'s, 'o> {
    fn new(source: &'s str, options: &'o LoadOptions) -> Self {
        Builder {
            source,
            options,
            positions: Positions::new(source),
            stack: Vec::new(),
            root: None,
            documents: Vec::new(),
            recording: Vec::new(),
            open_anchors: 0,
            anchors: HashMap::new(),
            replays: Vec::new(),
            nodes: 0,
            scalar_bytes: 0,
            alias_uses: 0,
            alias_nodes: 0,
            alias_bytes: 0,
        }
    }

    fn run(mut self) -> Result<Vec<Node>, Diagnostic> {
        let mut parser = Parser::new_from_str(self.source);
        loop {
            let (event, span, source) = if let Some(replay) = self.replays.last_mut() {
                if replay.next >= replay.end {
                    self.replays.pop();
                    continue;
                }
                let (event, span) = self.recording[replay.next].clone();
                replay.next += 1;
                // The last event of a replay completes the expansion's root,
                // which is shown where the alias is written.
                let root = (replay.next == replay.end).then_some(replay.alias);
                (event, span, EventSource::Replay { root })
            } else {
                match parser.next() {
                    None => break,
                    Some(Err(err)) => return Err(self.syntax_error(&err)),
                    Some(Ok((event, span))) => (event, span, EventSource::Parser),
                }
            };
            if source == EventSource::Parser && (self.open_anchors > 0 || anchor_of(&event) > 0) {
                self.recording.push((event.clone(), span));
            }
            self.handle(event, span, source)?;
        }
        Ok(self.documents)
    }

    fn handle(
        &mut self,
        event: Event<'s>,
        span: RawSpan,
        source: EventSource,
    ) -> Result<(), Diagnostic> {
        let replayed = source != EventSource::Parser;
        let alias_root = match source {
            EventSource::Replay { root } => root,
            EventSource::Parser => None,
        };
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
            Event::DocumentStart(_) => {
                self.root = None;
                self.stack.clear();
            }
            Event::DocumentEnd => {
                if let Some(root) = self.root.take()
                    && !root.is_null()
                {
                    self.documents.push(root);
                }
                // Anchors are per document.
                self.anchors.clear();
                self.recording.clear();
                self.open_anchors = 0;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let mut node = self.scalar(text, style, tag.as_deref(), span)?;
                if let Some(alias) = alias_root {
                    node.span = self.span(alias);
                }
                if anchor > 0 && !replayed {
                    let bytes = node.as_str().map_or(0, str::len);
                    let last = self.recording.len();
                    self.anchors.insert(
                        anchor,
                        Anchor {
                            events: last.saturating_sub(1)..last,
                            nodes: 1,
                            height: 0,
                            bytes,
                        },
                    );
                }
                self.add(node, 0);
            }
            Event::SequenceStart(anchor, _) => {
                self.open(span, FrameKind::Seq(Vec::new()), anchor, replayed)?;
            }
            Event::MappingStart(anchor, _) => {
                let kind = FrameKind::Map {
                    entries: Vec::new(),
                    pending_key: None,
                };
                self.open(span, kind, anchor, replayed)?;
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(span, alias_root)?,
            Event::Alias(id) => self.alias(id, span, replayed)?,
        }
        Ok(())
    }

    fn scalar(
        &mut self,
        text: Cow<'s, str>,
        style: saphyr_parser::ScalarStyle,
        tag: Option<&saphyr_parser::Tag>,
        span: RawSpan,
    ) -> Result<Node, Diagnostic> {
        self.count_node(span)?;
        self.scalar_bytes += text.len();
        let explicit_string = tag.is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
        let style = match style {
            _ if explicit_string => ScalarStyle::Quoted,
            saphyr_parser::ScalarStyle::Plain => ScalarStyle::Plain,
            saphyr_parser::ScalarStyle::SingleQuoted | saphyr_parser::ScalarStyle::DoubleQuoted => {
                ScalarStyle::Quoted
            }
            saphyr_parser::ScalarStyle::Literal | saphyr_parser::ScalarStyle::Folded => {
                ScalarStyle::Block
            }
        };
        let mut span = self.span(span);
        if style == ScalarStyle::Block {
            span = self.trim_trailing_whitespace(span);
        }
        let value = if style == ScalarStyle::Plain && scalar::is_plain_null(&text) {
            NodeValue::Null
        } else {
            NodeValue::Scalar {
                text: text.into_owned(),
                style,
            }
        };
        Ok(Node { span, value })
    }

    fn open(
        &mut self,
        span: RawSpan,
        kind: FrameKind,
        anchor: usize,
        replayed: bool,
    ) -> Result<(), Diagnostic> {
        if self.stack.len() >= self.options.max_depth {
            return Err(self.depth_error(span));
        }
        self.count_node(span)?;
        let anchor = (anchor > 0 && !replayed).then(|| {
            self.open_anchors += 1;
            OpenAnchor {
                id: anchor,
                first_event: self.recording.len().saturating_sub(1),
                nodes_before: self.nodes - 1,
                bytes_before: self.scalar_bytes,
            }
        });
        self.stack.push(Frame {
            start: span,
            kind,
            child_height: 0,
            anchor,
        });
        Ok(())
    }

    fn close(&mut self, end: RawSpan, alias_root: Option<RawSpan>) -> Result<(), Diagnostic> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let start = self.span(frame.start);
        let end = if end.is_empty() {
            match &frame.kind {
                FrameKind::Seq(items) => items.last().map(|n| n.span),
                FrameKind::Map { entries, .. } => entries.last().map(|(_, v)| v.span),
            }
            .unwrap_or(start)
        } else {
            self.span(end)
        };
        let span = match alias_root {
            Some(alias) => self.span(alias),
            None => start.to(end),
        };
        let value = match frame.kind {
            FrameKind::Seq(items) => NodeValue::Seq(items),
            FrameKind::Map { entries, .. } => NodeValue::Map(finish_map(entries)?),
        };
        let height = frame.child_height + 1;
        if let Some(open) = frame.anchor {
            self.open_anchors -= 1;
            self.anchors.insert(
                open.id,
                Anchor {
                    events: open.first_event..self.recording.len(),
                    nodes: self.nodes - open.nodes_before,
                    height,
                    bytes: self.scalar_bytes - open.bytes_before,
                },
            );
        }
        self.add(Node { span, value }, height);
        Ok(())
    }

    /// Starts replaying an anchor, after checking that its whole expansion
    /// fits in the budgets. An alias met while replaying another one is
    /// part of that one's expansion, whose nodes are already counted.
    fn alias(&mut self, id: usize, raw: RawSpan, replayed: bool) -> Result<(), Diagnostic> {
        let Some(anchor) = self.anchors.get(&id) else {
            return Err(Diagnostic::error(
                "unknown-anchor",
                "alias refers to an anchor that is not defined before it (or contains it)",
            )
            .with_span(self.span(raw)));
        };
        let (events, nodes, height, bytes) = (
            anchor.events.clone(),
            anchor.nodes,
            anchor.height,
            anchor.bytes,
        );
        self.alias_uses += 1;
        if !replayed {
            self.alias_nodes = self.alias_nodes.saturating_add(nodes);
        }
        self.alias_bytes = self.alias_bytes.saturating_add(bytes);
        let exceeded = if self.alias_uses > self.options.max_alias_expansions {
            Some(format!(
                "more than {} alias uses",
                self.options.max_alias_expansions
            ))
        } else if self.alias_nodes > self.options.max_alias_nodes {
            Some(format!(
                "aliases expand to more than {} nodes",
                self.options.max_alias_nodes
            ))
        } else if self.nodes.saturating_add(nodes) > self.options.max_nodes {
            Some(format!(
                "aliases expand to more than {} nodes",
                self.options.max_nodes
            ))
        } else if self.alias_bytes > self.options.max_alias_bytes {
            Some(format!(
                "aliases expand to more than {} bytes of text",
                self.options.max_alias_bytes
            ))
        } else if self.stack.len() + height > self.options.max_depth {
            return Err(self.depth_error(raw));
        } else {
            None
        };
        if let Some(what) = exceeded {
            return Err(Diagnostic::error("budget", format!("the document is too large: {what}"))
                .with_span(self.span(raw))
                .with_hint("a YAML alias bomb? reduce the use of anchors and aliases (`&name`, `*name`)"));
        }
        self.replays.push(Replay {
            next: events.start,
            end: events.end,
            alias: raw,
        });
        Ok(())
    }

    /// Attaches a completed node to the open collection, or makes it the
    /// document's root.
    fn add(&mut self, node: Node, height: usize) {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        frame.child_height = frame.child_height.max(height);
        match &mut frame.kind {
            FrameKind::Seq(items) => items.push(node),
            FrameKind::Map {
                entries,
                pending_key,
            } => match pending_key.take() {
                Some(key) => entries.push((key, node)),
                None => *pending_key = Some(node),
            },
        }
    }

    fn count_node(&mut self, raw: RawSpan) -> Result<(), Diagnostic> {
        self.nodes += 1;
        if self.nodes > self.options.max_nodes {
            return Err(Diagnostic::error(
                "budget",
                format!(
                    "the file has more than {} YAML nodes",
                    self.options.max_nodes
                ),
            )
            .with_span(self.span(raw))
            .with_hint("split it into smaller files"));
        }
        Ok(())
    }

    fn depth_error(&mut self, raw: RawSpan) -> Diagnostic {
        Diagnostic::error(
            "budget",
            format!(
                "the document is nested more than {} levels deep",
                self.options.max_depth
            ),
        )
        .with_span(self.span(raw))
        .with_hint("flatten the structure")
    }

    fn syntax_error(&mut self, err: &ScanError) -> Diagnostic {
        // Computed from the byte offset: at the end of the input the
        // parser's line can point past the last line.
        let offset = self.positions.byte_offset(err.marker().index());
        let next_char = self.source[offset..].chars().next();
        let start = location_at(self.source, offset);
        let len = next_char.map_or(0, char::len_utf8);
        let span = Span {
            start,
            end: Location {
                column: start.column + u32::from(len > 0),
                ..start
            },
            offset,
            len,
        };
        let diagnostic = Diagnostic::error("yaml-syntax", format!("invalid YAML: {}", err.info()))
            .with_span(span);
        let line_start = self.source[..offset].rfind('\n').map_or(0, |i| i + 1);
        if next_char == Some('\t') || self.source[line_start..].starts_with('\t') {
            diagnostic.with_hint("indent with spaces: YAML does not allow tabs for indentation")
        } else {
            diagnostic
        }
    }

    fn span(&mut self, raw: RawSpan) -> Span {
        let offset = self.positions.byte_offset(raw.start.index());
        let end = self.positions.byte_offset(raw.end.index()).max(offset);
        Span {
            start: location(raw.start),
            end: location(raw.end),
            offset,
            len: end - offset,
        }
    }

    /// Block scalars' spans run up to the next token; cut them at the end of
    /// their last line of text.
    fn trim_trailing_whitespace(&self, span: Span) -> Span {
        let Some(text) = span.text(self.source) else {
            return span;
        };
        let trimmed = text.trim_end();
        if trimmed.len() == text.len() {
            return span;
        }
        let end = match trimmed.rfind('\n') {
            Some(i) => Location {
                line: span.start.line + count_u32(trimmed.matches('\n').count()),
                column: count_u32(trimmed[i + 1..].chars().count()) + 1,
            },
            None => Location {
                line: span.start.line,
                column: span.start.column + count_u32(trimmed.chars().count()),
            },
        };
        Span {
            end,
            len: trimmed.len(),
            ..span
        }
    }
}

fn anchor_of(event: &Event<'_>) -> usize {
    match event {
        Event::Scalar(_, _, anchor, _)
        | Event::SequenceStart(anchor, _)
        | Event::MappingStart(anchor, _) => *anchor,
        _ => 0,
    }
}

/// The location of a byte offset, counted from the start of `source`.
fn location_at(source: &str, offset: usize) -> Location {
    let before = &source[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Location {
        line: count_u32(before.matches('\n').count()) + 1,
        column: count_u32(before[line_start..].chars().count()) + 1,
    }
}

fn location(mark: Marker) -> Location {
    Location {
        line: count_u32(mark.line()),
        column: count_u32(mark.col()) + 1,
    }
}

/// Checks a finished mapping for duplicate keys and applies merge keys.
fn finish_map(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, Diagnostic> {
    let keys: Vec<Cow<'_, str>> = entries
        .iter()
        .map(|(key, _)| {
            key.key_text()
                .unwrap_or_else(|| Cow::Owned(key.key_string()))
        })
        .collect();
    if let Some(duplicate) = first_duplicate(&keys) {
        let key = &entries[duplicate].0;
        return Err(Diagnostic::error(
            "duplicate-key",
            format!("duplicate key `{}` in this mapping", keys[duplicate]),
        )
        .with_span(key.span)
        .with_hint("remove one of the two entries"));
    }
    if !entries.iter().any(|(key, _)| is_merge_key(key)) {
        return Ok(entries);
    }
    let explicit: HashSet<String> = keys.into_iter().map(Cow::into_owned).collect();
    let mut merged_keys: HashSet<String> = HashSet::new();
    let mut result = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        if !is_merge_key(&key) {
            result.push((key, value));
            continue;
        }
        let sources = match value.value {
            NodeValue::Map(map) => vec![map],
            NodeValue::Seq(items) if items.iter().all(|i| matches!(i.value, NodeValue::Map(_))) => {
                items
                    .into_iter()
                    .filter_map(|item| match item.value {
                        NodeValue::Map(map) => Some(map),
                        _ => None,
                    })
                    .collect()
            }
            _ => {
                return Err(Diagnostic::error(
                    "invalid-merge",
                    "the value of a merge key `<<` must be a mapping or a list of mappings",
                )
                .with_span(value.span)
                .with_hint("write `<<: *anchor` or `<<: [*one, *two]`"));
            }
        };
        // Explicit keys win, then earlier sources over later ones.
        for (merged_key, merged_value) in sources.into_iter().flatten() {
            let text = merged_key.key_string();
            if !explicit.contains(&text) && merged_keys.insert(text) {
                result.push((merged_key, merged_value));
            }
        }
    }
    Ok(result)
}

/// The index of the first key equal to an earlier one. Workflow mappings
/// are small: compare pairwise below a size where hashing pays off.
fn first_duplicate(keys: &[Cow<'_, str>]) -> Option<usize> {
    if keys.len() <= 16 {
        return (1..keys.len()).find(|&i| keys[..i].contains(&keys[i]));
    }
    let mut seen = HashSet::with_capacity(keys.len());
    keys.iter().position(|key| !seen.insert(key))
}

fn is_merge_key(key: &Node) -> bool {
    matches!(&key.value, NodeValue::Scalar { text, style: ScalarStyle::Plain } if text == "<<")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_default(source: &str) -> Result<Vec<Node>, Diagnostic> {
        load(source, &LoadOptions::default())
    }

    #[test]
    fn anchors_record_their_expansion_cost() {
        let options = LoadOptions::default();
        let mut builder = Builder::new("a: &a [x, {y: z}]\n", &options);
        let mut parser = Parser::new_from_str(builder.source);
        while let Some(Ok((event, span))) = parser.next() {
            if anchor_of(&event) > 0 || builder.open_anchors > 0 {
                builder.recording.push((event.clone(), span));
            }
            if matches!(event, Event::DocumentEnd) {
                break;
            }
            builder.handle(event, span, EventSource::Parser).unwrap();
        }
        let anchor = builder.anchors.values().next().unwrap();
        // seq, x, map, y, z
        assert_eq!((anchor.nodes, anchor.height, anchor.bytes), (5, 2, 3));
        assert_eq!(anchor.events.len(), 7);
    }

    #[test]
    fn alias_uses_are_limited() {
        let options = LoadOptions {
            max_alias_expansions: 3,
            ..LoadOptions::default()
        };
        assert!(load("a: &a 1\nb: [*a, *a, *a]\n", &options).is_ok());
        let err = load("a: &a 1\nb: [*a, *a, *a, *a]\n", &options).unwrap_err();
        assert_eq!(err.code(), "budget");
        assert_eq!(
            err.message(),
            "the document is too large: more than 3 alias uses"
        );
    }

    #[test]
    fn nested_aliases_replay_their_own_aliases() {
        let docs = load_default("a: &a [1]\nb: &b {x: *a}\nc: [*b, *a]\n").unwrap();
        assert_eq!(
            docs[0].get_key("c").unwrap().to_json(),
            serde_json::json!([{"x": [1]}, [1]])
        );
    }

    #[test]
    fn str_tag_makes_a_plain_scalar_a_string_and_other_tags_are_ignored() {
        let docs = load_default("a: !!str true\nb: !custom 5\nc: !!str\n").unwrap();
        assert_eq!(
            docs[0].to_json(),
            serde_json::json!({"a": "true", "b": 5, "c": ""})
        );
    }

    #[test]
    fn merge_key_sources_in_order_first_wins() {
        let docs =
            load_default("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc: {<<: [*a, *b], w: 0}\n")
                .unwrap();
        assert_eq!(
            docs[0].get_key("c").unwrap().to_json(),
            serde_json::json!({"x": 1, "y": 1, "z": 2, "w": 0})
        );
        let err = load_default("a: {<<: {x: 1}, <<: {y: 1}}\n").unwrap_err();
        assert_eq!(err.code(), "duplicate-key");
    }

    #[test]
    fn syntax_error_at_end_of_input_points_at_the_last_line() {
        let err = load_default("a: [1,\n  2").unwrap_err();
        let span = err.span().unwrap();
        assert_eq!((span.start.line, span.start.column, span.len), (2, 4, 0));
    }
}
