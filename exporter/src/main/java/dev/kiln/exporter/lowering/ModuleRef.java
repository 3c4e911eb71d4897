package dev.kiln.exporter.lowering;

import dev.kiln.exporter.archive.PickleObjects.ModuleObject;
import java.util.List;

/**
 * A module of the traced tree: its object, its parameter path ({@code down_blocks.0.resnets.1}) and the node-name
 * scope torch.onnx.export would give it ({@code [down_blocks.0, resnets.1]}).
 */
public record ModuleRef(ModuleObject object, String path, List<String> scope) {
  static final String CONTAINER_MODULE = "__torch__.torch.nn.modules.container.";

  public ModuleRef child(String name, ModuleObject child) {
    String childPath = path.isEmpty() ? name : path + "." + name;
    List<String> childScope = new java.util.ArrayList<>(scope);
    if (object.className().startsWith(CONTAINER_MODULE) && !childScope.isEmpty()) {
      // ModuleList children read like torch's scopes: /down_blocks.1/..., not /down_blocks/1/...
      childScope.set(childScope.size() - 1, childScope.get(childScope.size() - 1) + "." + name);
    } else {
      childScope.add(name);
    }
    return new ModuleRef(child, childPath, List.copyOf(childScope));
  }
}
