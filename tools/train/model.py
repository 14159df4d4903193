"""A PyTorch implementation of Qwen3VLMoeForConditionalGeneration (transformers 4.57 numerics, fp32),
written from docs/qwen3-vl-moe.md (sections 3-7) because the transformers package is
not available here. Module and parameter names equal the Hugging Face ones, so state_dict() is the
checkpoint (experts in the released layout: gate_up_proj [E, H, 2I], down_proj [E, I, H]).

Differences from HF are only in how the work is batched, for CPU training speed:
- all images of a batch have the same size, so the vision tower runs on [B, P, D] with full
  attention inside each image (HF packs them and uses cu_seqlens: the same result);
- text sequences are right-padded; the causal mask alone keeps real tokens from seeing padding, and
  padding tokens are kept out of the MoE (routing, capacity and the load-balancing loss);
- logits are computed only at the positions the caller asks for (the answer positions).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def default_config():
    return {
        "architectures": ["Qwen3VLMoeForConditionalGeneration"],
        "dtype": "bfloat16",
        "model_type": "qwen3_vl_moe",
        "text_config": {
            "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": None, "decoder_sparse_step": 1,
            "eos_token_id": None, "head_dim": 64, "hidden_act": "silu", "hidden_size": 128,
            "initializer_range": 0.02, "intermediate_size": 256, "max_position_embeddings": 4096,
            "mlp_only_layers": [], "model_type": "qwen3_vl_moe_text", "moe_intermediate_size": 32,
            "norm_topk_prob": True, "num_attention_heads": 4, "num_experts": 32, "num_experts_per_tok": 8,
            "num_hidden_layers": 4, "num_key_value_heads": 2, "pad_token_id": None, "rms_norm_eps": 1e-06,
            "rope_scaling": {"mrope_interleaved": True, "mrope_section": [12, 10, 10], "rope_type": "default"},
            "rope_theta": 1000000.0, "router_aux_loss_coef": 0.01, "tie_word_embeddings": False, "use_cache": True,
            "vocab_size": 704,
        },
        "tie_word_embeddings": False,
        "vision_config": {
            "deepstack_visual_indexes": [0, 1], "depth": 3, "hidden_act": "gelu_pytorch_tanh",
            "hidden_size": 96, "in_channels": 3, "initializer_range": 0.02, "intermediate_size": 192,
            "model_type": "qwen3_vl_moe_vision", "num_heads": 3, "num_position_embeddings": 256,
            "out_hidden_size": 128, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
        },
    }


def rms_norm(x, w, eps):
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), -1)


# ------------------------------------------------------------------------------------------------
# vision tower (docs/qwen3-vl-moe.md section 4)

class PatchEmbed(nn.Module):
    def __init__(self, vc):
        super().__init__()
        D, p, t = vc["hidden_size"], vc["patch_size"], vc["temporal_patch_size"]
        self.proj = nn.Conv3d(vc["in_channels"], D, (t, p, p), (t, p, p), bias=True)

    def forward(self, x):  # [..., 1536] -> [..., D]: the Conv3d with kernel = stride is a linear map
        w = self.proj.weight
        if self.training:
            # still images: the two temporal frames are equal (docs/qwen3-vl-moe.md section 4.1), so sum the two
            # weight halves and use one frame (the same result, 2x cheaper)
            C, T, P = w.shape[1], w.shape[2], w.shape[3]
            xs = x.reshape(*x.shape[:-1], C, T, P * P)[..., 0, :].reshape(*x.shape[:-1], C * P * P)
            return F.linear(xs, w.sum(2).reshape(w.shape[0], -1), self.proj.bias)
        return F.linear(x, w.reshape(w.shape[0], -1), self.proj.bias)


class VisionAttn(nn.Module):
    def __init__(self, D, nh):
        super().__init__()
        self.nh = nh
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)

    def forward(self, x, cos, sin):  # x [B, P, D]
        B, P, D = x.shape
        hd = D // self.nh
        qkv = self.qkv(x).view(B, P, 3, self.nh, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, nh, P, hd]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        a = torch.softmax((q @ k.transpose(-1, -2)) * hd ** -0.5, -1)
        o = (a @ v).transpose(1, 2).reshape(B, P, D)
        return self.proj(o)


class VisionMLP(nn.Module):
    def __init__(self, D, I):
        super().__init__()
        self.linear_fc1 = nn.Linear(D, I)
        self.linear_fc2 = nn.Linear(I, D)

    def forward(self, x):
        return self.linear_fc2(F.gelu(self.linear_fc1(x), approximate="tanh"))


class VisionBlock(nn.Module):
    def __init__(self, vc):
        super().__init__()
        D = vc["hidden_size"]
        self.norm1 = nn.LayerNorm(D, eps=1e-6)
        self.norm2 = nn.LayerNorm(D, eps=1e-6)
        self.attn = VisionAttn(D, vc["num_heads"])
        self.mlp = VisionMLP(D, vc["intermediate_size"])

    def forward(self, x, cos, sin):
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))


class PatchMerger(nn.Module):
    def __init__(self, vc, postshuffle):
        super().__init__()
        D, m = vc["hidden_size"], vc["spatial_merge_size"]
        self.hs = D * m * m
        self.post = postshuffle
        self.norm = nn.LayerNorm(self.hs if postshuffle else D, eps=1e-6)
        self.linear_fc1 = nn.Linear(self.hs, self.hs)
        self.linear_fc2 = nn.Linear(self.hs, vc["out_hidden_size"])

    def forward(self, x):  # [B, P, D] -> [B, P/4, out]
        B = x.shape[0]
        x = self.norm(x.reshape(B, -1, self.hs)) if self.post else self.norm(x).reshape(B, -1, self.hs)
        return self.linear_fc2(F.gelu(self.linear_fc1(x)))


class Vision(nn.Module):
    def __init__(self, vc):
        super().__init__()
        self.vc = vc
        self.patch_embed = PatchEmbed(vc)
        self.pos_embed = nn.Embedding(vc["num_position_embeddings"], vc["hidden_size"])
        self.blocks = nn.ModuleList([VisionBlock(vc) for _ in range(vc["depth"])])
        self.merger = PatchMerger(vc, False)
        self.deepstack_merger_list = nn.ModuleList([PatchMerger(vc, True) for _ in vc["deepstack_visual_indexes"]])

    def pos_interp(self, h, w):
        """Bilinear (align_corners) interpolation of the learned grid, in merge-block order
        (docs/qwen3-vl-moe.md section 4.2)."""
        S = int(math.isqrt(self.vc["num_position_embeddings"]))
        m = self.vc["spatial_merge_size"]
        hs, ws = torch.linspace(0, S - 1, h), torch.linspace(0, S - 1, w)
        h0, w0 = hs.int(), ws.int()
        h1, w1 = (h0 + 1).clip(max=S - 1), (w0 + 1).clip(max=S - 1)
        dh, dw = hs - h0, ws - w0
        T = self.pos_embed.weight
        idx = [(h0[:, None] * S + w0[None]), (h0[:, None] * S + w1[None]), (h1[:, None] * S + w0[None]),
               (h1[:, None] * S + w1[None])]
        wt = [(1 - dh)[:, None] * (1 - dw)[None], (1 - dh)[:, None] * dw[None], dh[:, None] * (1 - dw)[None],
              dh[:, None] * dw[None]]
        pe = sum(T[i.flatten().long()] * c.flatten()[:, None] for i, c in zip(idx, wt))
        D = pe.shape[-1]
        return pe.view(h // m, m, w // m, m, D).permute(0, 2, 1, 3, 4).reshape(h * w, D)

    def rotary(self, h, w):
        """2-D rotary cos/sin [P, hd] in merge-block order (docs/qwen3-vl-moe.md section 4.3)."""
        m = self.vc["spatial_merge_size"]
        hd = self.vc["hidden_size"] // self.vc["num_heads"]
        dim = hd // 2
        inv = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
        hp = torch.arange(h)[:, None].expand(h, w).reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()
        wp = torch.arange(w)[None, :].expand(h, w).reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()
        th = torch.cat([hp[:, None].float() * inv[None], wp[:, None].float() * inv[None]], -1)
        emb = torch.cat([th, th], -1)
        return emb.cos(), emb.sin()

    def forward(self, pix, h, w):
        """pix [B, P, 1536] (all images h x w patches) -> image embeds [B, P/4, out], deepstack list."""
        x = self.patch_embed(pix) + self.pos_interp(h, w)
        cos, sin = self.rotary(h, w)
        ds = []
        idx = self.vc["deepstack_visual_indexes"]
        for i, blk in enumerate(self.blocks):
            x = blk(x, cos, sin)
            if i in idx:
                ds.append(self.deepstack_merger_list[idx.index(i)](x))
        return self.merger(x), ds


# ------------------------------------------------------------------------------------------------
# text decoder (docs/qwen3-vl-moe.md sections 5-7)

class Attention(nn.Module):
    def __init__(self, tc):
        super().__init__()
        H, hd = tc["hidden_size"], tc["head_dim"]
        self.nh, self.nkv, self.hd = tc["num_attention_heads"], tc["num_key_value_heads"], hd
        self.q_proj = nn.Linear(H, self.nh * hd, bias=False)
        self.k_proj = nn.Linear(H, self.nkv * hd, bias=False)
        self.v_proj = nn.Linear(H, self.nkv * hd, bias=False)
        self.o_proj = nn.Linear(self.nh * hd, H, bias=False)
        self.q_norm = RMSNorm(hd, tc["rms_norm_eps"])
        self.k_norm = RMSNorm(hd, tc["rms_norm_eps"])
        # train.py's attention hint and value probes read self.probs [B, nh, T, T] and self.values
        # [B, nkv, T, hd]
        self.keep_probs = False

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(B, T, self.nh, self.hd)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(B, T, self.nkv, self.hd)).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        if self.keep_probs:
            self.values = v
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        g = self.nh // self.nkv
        k = k.repeat_interleave(g, 1)
        v = v.repeat_interleave(g, 1)
        s = (q @ k.transpose(-1, -2)) * self.hd ** -0.5 + mask
        p = torch.softmax(s.float(), -1)
        if self.keep_probs:
            self.probs = p
        o = p @ v
        return self.o_proj(o.transpose(1, 2).reshape(B, T, self.nh * self.hd))


class Experts(nn.Module):
    def __init__(self, tc):
        super().__init__()
        E, H, I = tc["num_experts"], tc["hidden_size"], tc["moe_intermediate_size"]
        self.gate_up_proj = nn.Parameter(torch.empty(E, H, 2 * I))
        self.down_proj = nn.Parameter(torch.empty(E, I, H))


class SparseMoe(nn.Module):
    def __init__(self, tc):
        super().__init__()
        self.E, self.K = tc["num_experts"], tc["num_experts_per_tok"]
        self.gate = nn.Linear(tc["hidden_size"], self.E, bias=False)
        self.experts = Experts(tc)

    def forward(self, x):
        """x [N, H] (real tokens only) -> out [N, H], router probabilities [N, E], top-k indices [N, K]."""
        N, H = x.shape
        probs = torch.softmax(self.gate(x).float(), -1)
        w, idx = torch.topk(probs, self.K, -1)
        w = w / w.sum(-1, keepdim=True)
        # sort the (token, slot) pairs by expert and run each expert on its own rows. (A padded
        # [E, max count, H] batch with one bmm was used before: at initialisation similar tokens share
        # experts, the largest count was 5-8x the mean with 64 experts, and the padding took 90% of a
        # 12-layer step.)
        fe = idx.reshape(-1)
        order = torch.argsort(fe * (N * self.K) + torch.arange(N * self.K))
        tok = order // self.K
        counts = torch.bincount(fe, minlength=self.E).tolist()
        xs = x[tok].split(counts)
        # unbind, not indexing: the backward of E selects would zero-fill E full-size gradients
        gus, downs = self.experts.gate_up_proj.unbind(0), self.experts.down_proj.unbind(0)
        I = self.experts.down_proj.shape[1]
        ys = []
        for e, xe in enumerate(xs):
            if len(xe):
                gu = xe @ gus[e]
                ys.append((F.silu(gu[:, :I]) * gu[:, I:]) @ downs[e])
        contrib = torch.cat(ys) * w.reshape(-1)[order][:, None]
        out = x.new_zeros(N, H).index_add(0, tok, contrib)
        return out, probs, idx


class DecoderLayer(nn.Module):
    def __init__(self, tc):
        super().__init__()
        self.input_layernorm = RMSNorm(tc["hidden_size"], tc["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(tc["hidden_size"], tc["rms_norm_eps"])
        self.self_attn = Attention(tc)
        self.mlp = SparseMoe(tc)


class TextModel(nn.Module):
    def __init__(self, tc):
        super().__init__()
        self.tc = tc
        self.embed_tokens = nn.Embedding(tc["vocab_size"], tc["hidden_size"])
        self.layers = nn.ModuleList([DecoderLayer(tc) for _ in range(tc["num_hidden_layers"])])
        self.norm = RMSNorm(tc["hidden_size"], tc["rms_norm_eps"])

    def rope(self, pos):
        """pos [3, B, T] -> cos, sin [B, 1, T, hd] with interleaved M-RoPE (docs/qwen3-vl-moe.md section 6.1)."""
        hd = self.tc["head_dim"]
        sec = self.tc["rope_scaling"]["mrope_section"]
        inv = 1.0 / (self.tc["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
        fr = pos.float()[..., None] * inv  # [3, B, T, hd/2]
        f = fr[0].clone()
        for d, off in ((1, 1), (2, 2)):
            sl = slice(off, sec[d] * 3, 3)
            f[..., sl] = fr[d][..., sl]
        emb = torch.cat([f, f], -1)
        return emb.cos()[:, None], emb.sin()[:, None]


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = nn.Module()
        self.model.visual = Vision(cfg["vision_config"])
        self.model.language_model = TextModel(cfg["text_config"])
        tc = cfg["text_config"]
        self.lm_head = nn.Linear(tc["hidden_size"], tc["vocab_size"], bias=False)
        self.init_weights()

    def init_weights(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        std = self.cfg["text_config"]["initializer_range"]
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
            else:
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=g) * std)

    def forward(self, ids, pos, valid, image_pix=None, image_hw=None, image_rows=None, out_idx=None,
                taps=None, image_index=None):
        """ids [B, T] int64; pos [3, B, T] int64 (get_rope_index); valid [B, T] bool (real tokens);
        image_pix [Bi, P, 1536] with image_hw = (h, w) patches, one image each for the examples
        image_rows (batch rows, ascending), whose image-pad positions receive the image embeds in order
        (image_index: the image of each of those rows, when images are shared);
        out_idx: (b, t) index tensors of the positions whose logits are wanted (None: all).
        Returns logits and the list of (router probs, top-k idx) per layer for the aux loss."""
        lm = self.model.language_model
        x = lm.embed_tokens(ids)
        B, T, H = x.shape
        ds, vmask = [], None
        if image_pix is not None:
            emb, ds = self.model.visual(image_pix, *image_hw)
            self.last_image_embeds = [emb] + list(ds)  # for the training-only probe loss (train.py)
            if image_index is not None:  # several rows may ask about the same image
                emb, ds = emb[image_index], [d[image_index] for d in ds]
            vmask = torch.zeros(B, T, dtype=torch.bool)
            vmask[image_rows] = ids[image_rows] == self.cfg["image_token_id"]
            assert int(vmask.sum()) == emb.shape[0] * emb.shape[1], "image token count mismatch"
            x = x.masked_scatter(vmask[..., None], emb.reshape(-1, H))
        cos, sin = lm.rope(pos)
        mask = torch.full((T, T), float("-inf")).triu(1)
        vflat = valid.reshape(-1)
        vidx = vflat.nonzero().squeeze(1)
        routing = []
        for li, layer in enumerate(lm.layers):
            h = x + layer.self_attn(layer.input_layernorm(x), cos, sin, mask)
            u = layer.post_attention_layernorm(h).reshape(B * T, H)
            mo, probs, tk = layer.mlp(u[vidx])
            routing.append((probs, tk))
            x = h + torch.zeros(B * T, H).index_copy(0, vidx, mo).view(B, T, H)
            if taps is not None:
                taps[f"text.layer{li}.out"] = x
                taps[f"text.layer{li}.router_topk_idx"] = tk
            if li < len(ds):
                x = x.masked_scatter(vmask[..., None], x[vmask] + ds[li].reshape(-1, H))
        if out_idx is not None:
            x = x[out_idx[0], out_idx[1]]
        return self.lm_head(lm.norm(x)), routing


def aux_loss(routing, E, K):
    """Switch-style load balancing (HF load_balancing_loss_func): E * sum_e f_e * P_e, f_e the fraction
    of top-k slots that chose e, P_e the mean router probability; averaged over layers."""
    tot = 0.0
    for probs, tk in routing:
        f = torch.bincount(tk.reshape(-1), minlength=E).float() / tk.numel()
        tot = tot + E * (f * probs.mean(0)).sum()
    return tot / len(routing)


def rope_index(ids, image_token_id, grids, merge=2):
    """get_rope_index for one sequence (docs/qwen3-vl-moe.md section 6). ids: list of ints; grids: list of (t, h, w) in
    patches, one per run of image-pad tokens. -> [3, T] int list, rope_delta."""
    T = len(ids)
    pos = [[0] * T for _ in range(3)]
    cur, i, g = 0, 0, 0
    while i < T:
        if ids[i] == image_token_id:
            _, h, w = grids[g]
            g += 1
            gh, gw = h // merge, w // merge
            for r in range(gh):
                for c in range(gw):
                    pos[0][i], pos[1][i], pos[2][i] = cur, cur + r, cur + c
                    i += 1
            cur += max(gh, gw)
        else:
            for a in range(3):
                pos[a][i] = cur
            cur += 1
            i += 1
    return pos, max(max(p) for p in pos) + 1 - T
