"""CLIP text encoder after transformers' CLIPTextModel / CLIPTextModelWithProjection (module names included:
`text_model.encoder.layers.0.self_attn.q_proj`, ..., `text_projection`)."""

import torch
from torch import nn


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


class CLIPTextEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.token_embedding = nn.Embedding(config["vocab_size"], config["hidden_size"])
        self.position_embedding = nn.Embedding(config["max_position_embeddings"], config["hidden_size"])
        self.register_buffer("position_ids", torch.arange(config["max_position_embeddings"]).expand((1, -1)))

    def forward(self, input_ids):
        seq_length = input_ids.shape[-1]
        position_ids = self.position_ids[:, :seq_length]
        return self.token_embedding(input_ids) + self.position_embedding(position_ids)


class CLIPAttention(nn.Module):
    """Heads folded into the batch for bmm; the causal mask is added on a [batch, heads, tgt, src] view."""

    def __init__(self, config):
        super().__init__()
        self.embed_dim = config["hidden_size"]
        self.num_heads = config["num_attention_heads"]
        self.head_dim = self.embed_dim // self.num_heads
        self.scale = self.head_dim ** -0.5
        self.k_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.v_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.q_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.out_proj = nn.Linear(self.embed_dim, self.embed_dim)

    def _shape(self, tensor, seq_len, bsz):
        return tensor.view(bsz, seq_len, self.num_heads, self.head_dim).transpose(1, 2).contiguous()

    def forward(self, hidden_states, causal_attention_mask):
        bsz, tgt_len, embed_dim = hidden_states.size()
        query_states = self.q_proj(hidden_states) * self.scale
        key_states = self._shape(self.k_proj(hidden_states), -1, bsz)
        value_states = self._shape(self.v_proj(hidden_states), -1, bsz)
        proj_shape = (bsz * self.num_heads, -1, self.head_dim)
        query_states = self._shape(query_states, tgt_len, bsz).view(*proj_shape)
        key_states = key_states.view(*proj_shape)
        value_states = value_states.view(*proj_shape)
        src_len = key_states.size(1)
        attn_weights = torch.bmm(query_states, key_states.transpose(1, 2))
        attn_weights = attn_weights.view(bsz, self.num_heads, tgt_len, src_len) + causal_attention_mask
        attn_weights = attn_weights.view(bsz * self.num_heads, tgt_len, src_len)
        attn_weights = nn.functional.softmax(attn_weights, dim=-1)
        attn_output = torch.bmm(attn_weights, value_states)
        attn_output = attn_output.view(bsz, self.num_heads, tgt_len, self.head_dim)
        attn_output = attn_output.transpose(1, 2)
        attn_output = attn_output.reshape(bsz, tgt_len, embed_dim)
        return self.out_proj(attn_output)


class CLIPMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.hidden_act = config["hidden_act"]
        self.fc1 = nn.Linear(config["hidden_size"], config["intermediate_size"])
        self.fc2 = nn.Linear(config["intermediate_size"], config["hidden_size"])

    def forward(self, hidden_states):
        hidden_states = self.fc1(hidden_states)
        if self.hidden_act == "quick_gelu":
            hidden_states = quick_gelu(hidden_states)
        elif self.hidden_act == "gelu":
            hidden_states = nn.functional.gelu(hidden_states)
        else:
            raise ValueError("unknown hidden_act " + self.hidden_act)
        return self.fc2(hidden_states)


class CLIPEncoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self_attn = CLIPAttention(config)
        self.layer_norm1 = nn.LayerNorm(config["hidden_size"], eps=config["layer_norm_eps"])
        self.mlp = CLIPMLP(config)
        self.layer_norm2 = nn.LayerNorm(config["hidden_size"], eps=config["layer_norm_eps"])

    def forward(self, hidden_states, causal_attention_mask):
        residual = hidden_states
        hidden_states = self.layer_norm1(hidden_states)
        hidden_states = self.self_attn(hidden_states, causal_attention_mask)
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = self.layer_norm2(hidden_states)
        hidden_states = self.mlp(hidden_states)
        return residual + hidden_states


class CLIPEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(config) for _ in range(config["num_hidden_layers"])])

    def forward(self, inputs_embeds, causal_attention_mask):
        encoder_states = (inputs_embeds,)
        hidden_states = inputs_embeds
        for layer in self.layers:
            hidden_states = layer(hidden_states, causal_attention_mask)
            encoder_states = encoder_states + (hidden_states,)
        return hidden_states, encoder_states


def make_causal_mask(bsz, tgt_len, dtype):
    """transformers' _make_causal_mask: finfo.min above the diagonal, 0 elsewhere, [bsz, 1, tgt, tgt]."""
    mask = torch.full((tgt_len, tgt_len), torch.tensor(torch.finfo(dtype).min))
    mask_cond = torch.arange(mask.size(-1))
    mask.masked_fill_(mask_cond < (mask_cond + 1).view(mask.size(-1), 1), 0)
    mask = mask.to(dtype)
    return mask[None, None, :, :].expand(bsz, 1, tgt_len, tgt_len)


class CLIPTextTransformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embeddings = CLIPTextEmbeddings(config)
        self.encoder = CLIPEncoder(config)
        self.final_layer_norm = nn.LayerNorm(config["hidden_size"], eps=config["layer_norm_eps"])

    def forward(self, input_ids):
        input_shape = input_ids.size()
        input_ids = input_ids.view(-1, input_shape[-1])
        hidden_states = self.embeddings(input_ids)
        causal_attention_mask = make_causal_mask(input_shape[0], input_shape[1], hidden_states.dtype)
        last_hidden_state, encoder_states = self.encoder(hidden_states, causal_attention_mask)
        last_hidden_state = self.final_layer_norm(last_hidden_state)
        # The end-of-text token has the highest id in a CLIP vocabulary, so argmax finds its position.
        pooled_output = last_hidden_state[
            torch.arange(last_hidden_state.shape[0]), input_ids.to(dtype=torch.int).argmax(dim=-1)]
        return last_hidden_state, pooled_output, encoder_states


class CLIPTextModel(nn.Module):
    """input_ids → (last_hidden_state, pooler_output, hidden_states.0 … hidden_states.N)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.text_model = CLIPTextTransformer(config)

    def forward(self, input_ids):
        last_hidden_state, pooled_output, hidden_states = self.text_model(input_ids)
        return (last_hidden_state, pooled_output) + hidden_states


class CLIPTextModelWithProjection(nn.Module):
    """SDXL's second text encoder: input_ids → (text_embeds, last_hidden_state, hidden_states.0 … N); the
    pipeline uses text_embeds as the pooled prompt and hidden_states.{N-1} (penultimate) as the context."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.text_model = CLIPTextTransformer(config)
        self.text_projection = nn.Linear(config["hidden_size"], config["projection_dim"], bias=False)

    def forward(self, input_ids):
        last_hidden_state, pooled_output, hidden_states = self.text_model(input_ids)
        return (self.text_projection(pooled_output), last_hidden_state) + hidden_states
