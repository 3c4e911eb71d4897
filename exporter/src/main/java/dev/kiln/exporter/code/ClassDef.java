package dev.kiln.exporter.code;

import java.util.Map;

/** A class of the traced code, by its qualified name ({@code __torch__.models.___torch_mangle_199.UpBlock}). */
public record ClassDef(String qualifiedName, Map<String, Method> methods, String file, int line) {}
