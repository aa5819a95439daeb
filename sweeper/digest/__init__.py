"""The DPO's daily digest: what to report (queries), the content (model), HTML and text
(render), and delivery through Graph or SMTP (deliver), glued by :mod:`.run`."""
