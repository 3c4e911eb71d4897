package dev.kiln.graph;

import dev.kiln.common.ExternalDataRules;
import dev.kiln.graph.proto.OnnxProto.StringStringEntryProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import java.nio.file.Path;

/**
 * Resolves a tensor's external_data entries to a checked (file, offset, length). A model file is
 * untrusted input: the rules (locations inside the model's folder, ranges inside the file, a length that
 * fits the shape) live in {@link ExternalDataRules}, which the runner applies too before ONNX Runtime sees
 * a model.
 */
final class ExternalData {
  private final ExternalDataRules rules;

  ExternalData(Path model) {
    this.rules = new ExternalDataRules(model);
  }

  ExternalTensor resolve(TensorProto proto, DataType dataType, long[] dims) {
    String tensorName = proto.getName();
    String location = null;
    String offsetText = null;
    String lengthText = null;
    for (StringStringEntryProto entry : proto.getExternalDataList()) {
      switch (entry.getKey()) {
        case "location" -> location = entry.getValue();
        case "offset" -> offsetText = entry.getValue();
        case "length" -> lengthText = entry.getValue();
        default -> {
          // checksum and unknown keys carry no layout information; they are kept in the proto.
        }
      }
    }
    ExternalDataRules.Range range = rules.resolve(tensorName, location, offsetText, lengthText);
    rules.checkLength(tensorName, location, dataType.name(), dataType.bitWidth(), dims, range.length());
    return new ExternalTensor(range.file(), range.offset(), range.length(), dataType, dims, proto);
  }
}
