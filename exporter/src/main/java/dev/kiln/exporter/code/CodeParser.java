package dev.kiln.exporter.code;

import dev.kiln.common.KilnException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses the Python subset {@code torch.jit.trace} writes under {@code code/__torch__/}: classes whose methods are
 * straight-line assignments of calls, attribute reads, literals and tuple unpacking, ending in a return. Anything
 * a traced module never contains (control flow, operators, mutation of attributes) is refused with its file and
 * line, so a scripted module is named rather than exported wrongly.
 */
public final class CodeParser {
  private final String file;
  private final String module;
  private final List<Token> tokens = new ArrayList<>();
  private int position;
  private int line;

  private CodeParser(String file) {
    this.file = file;
    // code/__torch__/models/___torch_mangle_3.py -> __torch__.models.___torch_mangle_3
    String path = file.startsWith("code/") ? file.substring("code/".length()) : file;
    this.module = path.substring(0, path.length() - ".py".length()).replace('/', '.');
  }

  /** All classes of all code files, by qualified name. */
  public static Map<String, ClassDef> parse(Map<String, String> files) {
    Map<String, ClassDef> classes = new LinkedHashMap<>();
    for (Map.Entry<String, String> entry : files.entrySet()) {
      for (ClassDef definition : new CodeParser(entry.getKey()).parseFile(entry.getValue())) {
        classes.put(definition.qualifiedName(), definition);
      }
    }
    return classes;
  }

  private record LogicalLine(int number, int indent, String text) {}

  private List<ClassDef> parseFile(String source) {
    List<ClassDef> classes = new ArrayList<>();
    String className = null;
    int classLine = 0;
    Map<String, Method> methods = null;
    String methodName = null;
    List<String> parameters = null;
    List<Statement> body = null;
    int methodLine = 0;
    for (LogicalLine logical : logicalLines(source)) {
      line = logical.number();
      String text = logical.text().strip();
      if (logical.indent() == 0) {
        if (methodName != null) {
          methods.put(methodName, new Method(methodName, parameters, body, file, methodLine));
          methodName = null;
        }
        if (className != null) {
          classes.add(new ClassDef(module + "." + className, methods, file, classLine));
          className = null;
        }
        if (text.startsWith("class ")) {
          int end = indexOfAny(text, "(:");
          className = text.substring("class ".length(), end).strip();
          classLine = line;
          methods = new LinkedHashMap<>();
        } else if (text.startsWith("import ") || text.startsWith("from ")) {
          continue;
        } else if (text.startsWith("def ")) {
          // A free function only exists in scripted code; it is refused when called, not here.
          continue;
        } else if (startsWithWord(text, "if", "for", "while", "with", "try")) {
          throw controlFlow();
        } else {
          throw unsupported("top-level statement " + shorten(text));
        }
      } else if (className == null) {
        // The body of a skipped free function: refused only if called.
        if (startsWithWord(text, "if", "for", "while", "elif", "else", "with", "try", "except")) {
          continue;
        }
      } else if (logical.indent() <= 2) {
        if (methodName != null) {
          methods.put(methodName, new Method(methodName, parameters, body, file, methodLine));
          methodName = null;
        }
        if (text.startsWith("def ")) {
          tokenize(text);
          expectName("def");
          methodName = name();
          methodLine = line;
          parameters = parseParameters();
          body = new ArrayList<>();
        }
        // Field declarations, __parameters__, __annotations__ and the like describe types only.
      } else if (methodName != null) {
        body.add(parseStatement(text));
      }
    }
    if (methodName != null) {
      methods.put(methodName, new Method(methodName, parameters, body, file, methodLine));
    }
    if (className != null) {
      classes.add(new ClassDef(module + "." + className, methods, file, classLine));
    }
    return classes;
  }

  private List<String> parseParameters() {
    expect("(");
    List<String> names = new ArrayList<>();
    while (!peekIs(")")) {
      names.add(name());
      // Skip the annotation and any default up to the next top-level comma.
      int depth = 0;
      while (true) {
        Token token = peek();
        if (token == null) {
          throw unsupported("unterminated parameter list");
        }
        if (depth == 0 && (token.text.equals(",") || token.text.equals(")"))) {
          break;
        }
        if (token.text.equals("(") || token.text.equals("[")) {
          depth++;
        } else if (token.text.equals(")") || token.text.equals("]")) {
          depth--;
        }
        position++;
      }
      if (peekIs(",")) {
        position++;
      }
    }
    return names;
  }

  private Statement parseStatement(String text) {
    if (startsWithWord(text, "if", "for", "while", "elif", "else", "with", "try", "except", "break", "continue")) {
      throw controlFlow();
    }
    tokenize(text);
    if (peekIs("return")) {
      position++;
      Expr value = parseTupleOrExpression();
      expectEnd();
      return new Statement.Return(value, line);
    }
    if (startsWithWord(text, "raise", "assert", "del", "pass", "global", "nonlocal", "lambda", "yield")) {
      throw unsupported("statement " + shorten(text));
    }
    // Targets: NAME or NAME, NAME, ... followed by '='.
    int start = position;
    List<String> targets = new ArrayList<>();
    boolean unpack = false;
    while (peek() != null && peek().kind == Kind.NAME) {
      targets.add(peek().text);
      position++;
      if (peekIs(",")) {
        unpack = true;
        position++;
        continue;
      }
      break;
    }
    if (!targets.isEmpty() && peekIs("=")) {
      position++;
      Expr value = parseTupleOrExpression();
      expectEnd();
      return new Statement.Assign(targets, unpack, value, line);
    }
    if (peek() != null && (peekIs(".") || peekIs("[")) && !targets.isEmpty()) {
      // self.x = ... or x[i] = ...: traced code never mutates; refuse rather than guess.
      int scan = position;
      while (scan < tokens.size() && !tokens.get(scan).text.equals("=")) {
        scan++;
      }
      if (scan < tokens.size()) {
        throw unsupported("assignment to " + shorten(text.substring(0, text.indexOf('=')).strip()));
      }
    }
    position = start;
    Expr value = parseExpression();
    expectEnd();
    return new Statement.Assign(List.of(), false, value, line);
  }

  private Expr parseTupleOrExpression() {
    Expr first = parseExpression();
    if (!peekIs(",")) {
      return first;
    }
    List<Expr> items = new ArrayList<>(List.of(first));
    while (peekIs(",")) {
      position++;
      if (peek() == null) {
        break;
      }
      items.add(parseExpression());
    }
    return new Expr.TupleLiteral(items);
  }

  private Expr parseExpression() {
    if (peekIs("-")) {
      position++;
      Expr operand = parseExpression();
      if (operand instanceof Expr.IntLiteral literal) {
        return new Expr.IntLiteral(-literal.value());
      }
      if (operand instanceof Expr.FloatLiteral literal) {
        return new Expr.FloatLiteral(-literal.value());
      }
      throw unsupported("unary minus on " + operand.getClass().getSimpleName());
    }
    Expr expression = parsePrimary();
    while (true) {
      if (peekIs(".")) {
        position++;
        expression = new Expr.Attribute(expression, name());
      } else if (peekIs("(")) {
        position++;
        List<Expr> arguments = new ArrayList<>();
        List<Expr.Keyword> keywords = new ArrayList<>();
        while (!peekIs(")")) {
          if (peek() != null && peek().kind == Kind.NAME && position + 1 < tokens.size() && tokens.get(position + 1).text.equals("=")) {
            String keyword = name();
            position++;
            keywords.add(new Expr.Keyword(keyword, parseExpression()));
          } else {
            if (!keywords.isEmpty()) {
              throw unsupported("positional argument after a keyword");
            }
            arguments.add(parseExpression());
          }
          if (!peekIs(",")) {
            break;
          }
          position++;
        }
        expect(")");
        expression = new Expr.Call(expression, arguments, keywords);
      } else if (peekIs("[")) {
        position++;
        List<Expr> indices = new ArrayList<>();
        while (!peekIs("]")) {
          indices.add(parseExpression());
          if (!peekIs(",")) {
            break;
          }
          position++;
        }
        expect("]");
        expression = new Expr.Subscript(expression, indices);
      } else {
        break;
      }
    }
    Token next = peek();
    if (next != null && next.kind == Kind.OPERATOR && !next.text.equals(",") && !next.text.equals(")") && !next.text.equals("]")
        && !next.text.equals("=") && !next.text.equals(":")) {
      throw unsupported("operator '" + next.text + "' (traced code calls torch ops instead)");
    }
    return expression;
  }

  private Expr parsePrimary() {
    Token token = peek();
    if (token == null) {
      throw unsupported("expression ends early");
    }
    position++;
    switch (token.kind) {
      case NAME -> {
        return switch (token.text) {
          case "None" -> new Expr.NoneLiteral();
          case "True" -> new Expr.BoolLiteral(true);
          case "False" -> new Expr.BoolLiteral(false);
          case "if", "for", "while", "lambda", "not", "and", "or", "in", "is" -> throw unsupported("keyword '" + token.text + "' in an expression");
          default -> new Expr.Name(token.text);
        };
      }
      case INTEGER -> {
        try {
          return new Expr.IntLiteral(Long.parseLong(token.text));
        } catch (NumberFormatException e) {
          throw unsupported("integer literal " + token.text + " out of range");
        }
      }
      case FLOAT -> {
        return new Expr.FloatLiteral(Double.parseDouble(token.text));
      }
      case STRING -> {
        return new Expr.StringLiteral(token.text);
      }
      case OPERATOR -> {
        if (token.text.equals("(")) {
          if (peekIs(")")) {
            position++;
            return new Expr.TupleLiteral(List.of());
          }
          Expr first = parseExpression();
          if (peekIs(")")) {
            position++;
            return first;
          }
          List<Expr> items = new ArrayList<>(List.of(first));
          while (peekIs(",")) {
            position++;
            if (peekIs(")")) {
              break;
            }
            items.add(parseExpression());
          }
          expect(")");
          return new Expr.TupleLiteral(items);
        }
        if (token.text.equals("[")) {
          List<Expr> items = new ArrayList<>();
          while (!peekIs("]")) {
            items.add(parseExpression());
            if (!peekIs(",")) {
              break;
            }
            position++;
          }
          expect("]");
          return new Expr.ListLiteral(items);
        }
        throw unsupported("operator '" + token.text + "'");
      }
      default -> throw unsupported("token " + token.text);
    }
  }

  // ---- tokens ----

  private enum Kind {
    NAME,
    INTEGER,
    FLOAT,
    STRING,
    OPERATOR
  }

  private record Token(Kind kind, String text) {}

  private void tokenize(String text) {
    tokens.clear();
    position = 0;
    int index = 0;
    while (index < text.length()) {
      char character = text.charAt(index);
      if (character == ' ' || character == '\t') {
        index++;
      } else if (character == '#') {
        break;
      } else if (Character.isLetter(character) || character == '_') {
        int end = index;
        while (end < text.length() && (Character.isLetterOrDigit(text.charAt(end)) || text.charAt(end) == '_')) {
          end++;
        }
        tokens.add(new Token(Kind.NAME, text.substring(index, end)));
        index = end;
      } else if (Character.isDigit(character)) {
        int end = index;
        boolean floating = false;
        while (end < text.length()) {
          char next = text.charAt(end);
          if (Character.isDigit(next)) {
            end++;
          } else if (next == '.' || next == 'e' || next == 'E') {
            floating = true;
            end++;
            if ((next == 'e' || next == 'E') && end < text.length() && (text.charAt(end) == '-' || text.charAt(end) == '+')) {
              end++;
            }
          } else {
            break;
          }
        }
        tokens.add(new Token(floating ? Kind.FLOAT : Kind.INTEGER, text.substring(index, end)));
        index = end;
      } else if (character == '"' || character == '\'') {
        StringBuilder value = new StringBuilder();
        int end = index + 1;
        while (end < text.length() && text.charAt(end) != character) {
          if (text.charAt(end) == '\\' && end + 1 < text.length()) {
            end++;
          }
          value.append(text.charAt(end));
          end++;
        }
        if (end >= text.length()) {
          throw unsupported("unterminated string");
        }
        tokens.add(new Token(Kind.STRING, value.toString()));
        index = end + 1;
      } else if (text.startsWith("->", index) || text.startsWith("==", index) || text.startsWith("!=", index) || text.startsWith("**", index)
          || text.startsWith("<=", index) || text.startsWith(">=", index) || text.startsWith("//", index)) {
        tokens.add(new Token(Kind.OPERATOR, text.substring(index, index + 2)));
        index += 2;
      } else {
        tokens.add(new Token(Kind.OPERATOR, String.valueOf(character)));
        index++;
      }
    }
  }

  private Token peek() {
    return position < tokens.size() ? tokens.get(position) : null;
  }

  private boolean peekIs(String text) {
    Token token = peek();
    return token != null && token.text.equals(text) && (token.kind == Kind.OPERATOR || token.kind == Kind.NAME);
  }

  private void expect(String text) {
    if (!peekIs(text)) {
      throw unsupported("expected '" + text + "' but found " + (peek() == null ? "the end of the line" : "'" + peek().text + "'"));
    }
    position++;
  }

  private void expectName(String text) {
    expect(text);
  }

  private void expectEnd() {
    if (peek() != null) {
      throw unsupported("unexpected '" + peek().text + "'");
    }
  }

  private String name() {
    Token token = peek();
    if (token == null || token.kind != Kind.NAME) {
      throw unsupported("expected a name but found " + (token == null ? "the end of the line" : "'" + token.text + "'"));
    }
    position++;
    return token.text;
  }

  // ---- lines ----

  private List<LogicalLine> logicalLines(String source) {
    List<LogicalLine> lines = new ArrayList<>();
    String[] physical = source.split("\n", -1);
    StringBuilder pending = null;
    int pendingLine = 0;
    int pendingIndent = 0;
    int depth = 0;
    for (int index = 0; index < physical.length; index++) {
      String text = physical[index];
      if (pending == null) {
        if (text.isBlank()) {
          continue;
        }
        pending = new StringBuilder();
        pendingLine = index + 1;
        int indent = 0;
        while (indent < text.length() && text.charAt(indent) == ' ') {
          indent++;
        }
        pendingIndent = indent;
      } else {
        pending.append(' ');
      }
      pending.append(text);
      char quote = 0;
      for (int position = 0; position < text.length(); position++) {
        char character = text.charAt(position);
        if (quote != 0) {
          if (character == '\\') {
            position++;
          } else if (character == quote) {
            quote = 0;
          }
        } else if (character == '"' || character == '\'') {
          quote = character;
        } else if (character == '(' || character == '[' || character == '{') {
          depth++;
        } else if (character == ')' || character == ']' || character == '}') {
          depth--;
        } else if (character == '#') {
          break;
        }
      }
      if (depth <= 0) {
        lines.add(new LogicalLine(pendingLine, pendingIndent, pending.toString()));
        pending = null;
        depth = 0;
      }
    }
    if (pending != null) {
      line = pendingLine;
      throw unsupported("unbalanced brackets");
    }
    return lines;
  }

  private static boolean startsWithWord(String text, String... words) {
    for (String word : words) {
      if (text.startsWith(word) && (text.length() == word.length() || !Character.isLetterOrDigit(text.charAt(word.length()))
          && text.charAt(word.length()) != '_')) {
        return true;
      }
    }
    return false;
  }

  private static int indexOfAny(String text, String characters) {
    for (int index = 0; index < text.length(); index++) {
      if (characters.indexOf(text.charAt(index)) >= 0) {
        return index;
      }
    }
    return text.length();
  }

  private static String shorten(String text) {
    String single = text.length() > 60 ? text.substring(0, 60) + "..." : text;
    return "'" + single.replaceAll("[\\p{Cntrl}]", "?") + "'";
  }

  private KilnException controlFlow() {
    return new KilnException.Unsupported("unsupported: scripted control flow at " + file + ":" + line
        + " (export a torch.jit.trace of the module, not torch.jit.script)");
  }

  private KilnException unsupported(String what) {
    return new KilnException.Unsupported("unsupported: " + what + " at " + file + ":" + line);
  }
}
