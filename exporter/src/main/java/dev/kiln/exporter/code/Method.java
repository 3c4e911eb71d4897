package dev.kiln.exporter.code;

import java.util.List;

/** A method of a traced module class: its parameters (the first is {@code self}) and straight-line body. */
public record Method(String name, List<String> parameters, List<Statement> body, String file, int line) {}
